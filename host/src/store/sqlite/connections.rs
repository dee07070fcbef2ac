//! Synchronous connections to the database file, kept between uses with
//! their prepared statements: the writer's (its transactions run on its
//! own thread) and the point reads' (a run, a namespace, a version, read on
//! the caller's thread). Each statement sent to one of sqlx's connections
//! crosses to that connection's worker thread and back, two thread
//! wake-ups; a point read that finds its pages in the cache takes less than
//! those.

use super::{BUSY_TIMEOUT, Durability, connection_pragmas};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Connections to one file, opened on first use and kept when given back.
pub(super) struct Connections {
    path: PathBuf,
    durability: Durability,
    idle: Mutex<Vec<Connection>>,
}

impl Connections {
    pub(super) fn new(path: PathBuf, durability: Durability) -> Arc<Self> {
        Arc::new(Connections {
            path,
            durability,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle connection, or a new one with the pool's settings.
    pub(super) fn take(&self) -> anyhow::Result<Connection> {
        if let Some(conn) = self.idle.lock().expect("connections").pop() {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        for (key, value) in connection_pragmas(self.durability) {
            conn.pragma_update(None, key, value)?;
        }
        Ok(conn)
    }

    /// Keep `conn` for the next use, rolled back if a transaction is still
    /// open; one whose rollback failed is closed (its state is unknown).
    pub(super) fn give_back(&self, conn: Connection) {
        if conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok() {
            self.idle.lock().expect("connections").push(conn);
        }
    }

    /// Run `read` on one of these connections, on the caller's thread.
    /// For reads of a few rows by key: a long one would hold up the
    /// caller's thread (a runtime worker) for as long.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let conn = self.take()?;
        let answer = read(&conn);
        self.give_back(conn);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connections_have_the_pools_settings() {
        let dir = tempfile::tempdir().unwrap();
        let connections = Connections::new(dir.path().join("t.db"), Durability::Normal);
        let conn = connections.take().unwrap();
        let read = |pragma: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .unwrap()
        };
        // NORMAL is 1; FULL would be 2.
        assert_eq!(read("synchronous"), 1);
        assert_eq!(read("foreign_keys"), 1);
        assert_eq!(read("wal_autocheckpoint"), 0);
        assert_eq!(read("busy_timeout"), 10_000);
    }

    #[test]
    fn a_connection_given_back_inside_a_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let connections = Connections::new(dir.path().join("t.db"), Durability::Normal);
        let conn = connections.take().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); BEGIN; INSERT INTO t VALUES (1);")
            .unwrap();
        connections.give_back(conn);
        let count: i64 = connections
            .read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(count, 0);
    }
}
