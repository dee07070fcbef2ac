//! Search attributes as stored — one row per (run, key): the value's text
//! (a string as is, other values as JSON) and, for a number, the number —
//! and a list query ([`crate::query::Expr`]) as SQL over them and the runs
//! table, the same for every backend.

use crate::query::{Expr, Field, Op};
use serde_json::{Map, Value};
use sqlx::{Database, Encode, QueryBuilder, Type};

/// [`super::Tx::set_attributes`]'s statements, for every backend: run,
/// key (and text, number, JSON).
pub(super) const SET_ATTRIBUTE: &str = "INSERT INTO run_attributes (run_id, key, value, num, json) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, num = excluded.num, \
     json = excluded.json";
pub(super) const REMOVE_ATTRIBUTE: &str =
    "DELETE FROM run_attributes WHERE run_id = $1 AND key = $2";

/// How a value is kept: (text, number, JSON).
pub fn stored(value: &Value) -> (String, Option<f64>, String) {
    let json = value.to_string();
    match value {
        Value::String(s) => (s.clone(), None, json),
        Value::Number(n) => (n.to_string(), n.as_f64(), json),
        _ => (json.clone(), None, json),
    }
}

/// A run's attributes, for every backend: key, text, number, JSON.
pub(super) const ATTRIBUTES_OF: &str =
    "SELECT key, value, num, json FROM run_attributes WHERE run_id = $1 ORDER BY key";

pub(super) type AttributeRow = (String, String, Option<f64>, Option<String>);

/// The attributes as the workflow set them (rows from before the JSON was
/// kept read as a number or a string).
pub(super) fn attributes_from_rows(rows: Vec<AttributeRow>) -> Map<String, Value> {
    rows.into_iter()
        .map(|(key, text, num, json)| {
            let value = json
                .and_then(|j| serde_json::from_str(&j).ok())
                .or_else(|| {
                    num.and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                })
                .unwrap_or(Value::String(text));
            (key, value)
        })
        .collect()
}

/// Append `expr` to a `… FROM runs WHERE …` query.
pub fn push_expr<'a, DB: Database>(qb: &mut QueryBuilder<'a, DB>, expr: &'a Expr)
where
    String: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            qb.push("(");
            push_expr(qb, a);
            qb.push(if matches!(expr, Expr::And(..)) {
                " AND "
            } else {
                " OR "
            });
            push_expr(qb, b);
            qb.push(")");
        }
        Expr::Not(inner) => {
            qb.push("NOT (");
            push_expr(qb, inner);
            qb.push(")");
        }
        Expr::Compare { field, op, value } => compare(qb, field, *op, value),
        Expr::In { field, values } => {
            qb.push("(");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                compare(qb, field, Op::Eq, value);
            }
            qb.push(")");
        }
        Expr::StartsWith { field, prefix } => {
            let column = open(qb, field);
            qb.push(format!("substr({column}, 1, CAST("))
                .push_bind(prefix.chars().count() as i64)
                .push(" AS INTEGER)) = ")
                .push_bind(prefix.clone());
            close(qb, field);
        }
    }
}

/// Open a condition on `field`; answers the column to compare.
fn open<'a, DB: Database>(qb: &mut QueryBuilder<'a, DB>, field: &'a Field) -> String
where
    String: Encode<'a, DB> + Type<DB>,
{
    match field {
        Field::Text(column) | Field::Time(column) => {
            qb.push("(");
            format!("runs.{column}")
        }
        Field::Attribute(key) => {
            qb.push(
                "EXISTS (SELECT 1 FROM run_attributes a WHERE a.run_id = runs.run_id AND a.key = ",
            )
            .push_bind(key.clone())
            .push(" AND ");
            "a.value".into()
        }
    }
}

fn close<DB: Database>(qb: &mut QueryBuilder<'_, DB>, _field: &Field) {
    qb.push(")");
}

fn compare<'a, DB: Database>(qb: &mut QueryBuilder<'a, DB>, field: &'a Field, op: Op, value: &Value)
where
    String: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let column = open(qb, field);
    match (field, value) {
        (Field::Time(_), v) => {
            qb.push(&column)
                .push(op.sql())
                .push_bind(v.as_f64().unwrap_or(0.0) as i64);
        }
        (Field::Attribute(_), Value::Number(n)) => {
            qb.push("a.num")
                .push(op.sql())
                .push_bind(n.as_f64().unwrap_or(0.0));
        }
        (_, v) => {
            qb.push(&column).push(op.sql()).push_bind(stored(v).0);
        }
    }
    close(qb, field);
}
