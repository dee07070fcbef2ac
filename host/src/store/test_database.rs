//! A Postgres database made for one test and dropped after it. Compiled
//! into the library's tests (the store contract suite) and, by path, into
//! the end-to-end tests: one helper for both.

/// Postgres for the tests: `WEFT_TEST_POSTGRES` or the machine's own
/// (scripts/setup.sh --tests starts it).
fn admin_url() -> String {
    std::env::var("WEFT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Where the database is.
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin_url = admin_url();
        let name = format!("weft_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("Postgres at {admin_url} (scripts/setup.sh --tests starts it): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl TestDatabase {
    /// [`TestDatabase::create`] from synchronous code (even inside a
    /// runtime): on a thread of its own. (The end-to-end tests' servers.)
    #[allow(dead_code)]
    pub fn create_blocking() -> TestDatabase {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(TestDatabase::create())
        })
        .join()
        .expect("a test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropped outside any runtime's async context: a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&drop).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}
