//! Statements written once for every dialect: [`Sql`] holds the text with `?` where a value
//! goes, and the values; sqlx renders each placeholder as its database wants it (`?` for SQLite,
//! `$n` for PostgreSQL) when the statement runs ([`Exec`]).
//!
//! Values are a closed set ([`Value`]): the schema keeps times as Unix milliseconds and JSON as
//! text on both backends, so integers, text and flags are all a statement ever binds. That keeps
//! the bounds sqlx needs (`Encode`, `Executor`, …) in one place, [`Exec`]'s implementation,
//! instead of on every generic function.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::{Arguments, Database, Encode, Executor, IntoArguments, Type};

use crate::domain::AgentId;
use crate::store::StoreError;

/// A value a statement binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Flag(bool),
}

/// `From` for each kind of value a statement binds.
macro_rules! values {
    ($($from:ty => |$v:ident| $value:expr),* $(,)?) => {
        $(impl From<$from> for Value {
            fn from($v: $from) -> Self {
                $value
            }
        })*
    };
}

values! {
    i64 => |v| Self::Int(Some(v)),
    Option<i64> => |v| Self::Int(v),
    bool => |v| Self::Flag(v),
    String => |v| Self::Text(Some(v)),
    &str => |v| Self::Text(Some(v.to_owned())),
    Option<String> => |v| Self::Text(v),
    Option<&str> => |v| Self::Text(v.map(str::to_owned)),
    // Times are stored as Unix milliseconds.
    DateTime<Utc> => |t| Self::Int(Some(t.timestamp_millis())),
    Option<DateTime<Utc>> => |t| Self::Int(t.map(|t| t.timestamp_millis())),
    AgentId => |id| Self::Text(Some(id.to_string())),
}

/// One part of a statement: text, or a value where a placeholder goes.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Value(Value),
}

/// A statement being built: [`sql`] starts one from a template whose `?`s the binds fill in
/// order; text pushed after the template ([`Sql::push`]) and values bound past its last `?` go
/// at the end, for statements whose shape depends on their data (lists, multi-row `VALUES`).
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    parts: Vec<Part>,
    /// What is left of the template, from its next `?` on.
    rest: &'static str,
}

/// A statement from `template`, with `?` where each value bound next goes.
pub(crate) fn sql(template: &'static str) -> Sql {
    let mut q = Sql {
        parts: Vec::new(),
        rest: template,
    };
    q.advance();
    q
}

impl Sql {
    /// Moves the template's text up to its next `?` into the statement.
    fn advance(&mut self) {
        let cut = self.rest.find('?').unwrap_or(self.rest.len());
        if cut > 0 {
            self.parts.push(Part::Text(self.rest[..cut].to_owned()));
        }
        self.rest = &self.rest[cut..];
    }

    /// Binds the next value: at the template's next `?`, or at the end once none is left.
    pub(crate) fn bind(mut self, value: impl Into<Value>) -> Self {
        self.parts.push(Part::Value(value.into()));
        if let Some(rest) = self.rest.strip_prefix('?') {
            self.rest = rest;
            self.advance();
        }
        self
    }

    /// Appends text after the template (which must have no `?` left); the text binds nothing.
    pub(crate) fn push(mut self, text: &str) -> Self {
        debug_assert!(self.rest.is_empty(), "push before every `?` is bound");
        debug_assert!(
            !text.contains('?'),
            "pushed text with a placeholder: {text}"
        );
        self.parts.push(Part::Text(text.to_owned()));
        self
    }

    /// Appends `(?, ?, …)`, one placeholder per value: `IN` lists. An empty list is `(NULL)`,
    /// which nothing is `IN` (PostgreSQL refuses `()`).
    pub(crate) fn list<V: Into<Value>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self = self.push("(");
        let mut empty = true;
        for v in values {
            if !empty {
                self = self.push(", ");
            }
            self = self.bind(v);
            empty = false;
        }
        self.push(if empty { "NULL)" } else { ")" })
    }

    /// Appends one parenthesised row per item, separated by commas: multi-row `VALUES`.
    pub(crate) fn rows(mut self, rows: impl IntoIterator<Item = Vec<Value>>) -> Self {
        for (i, row) in rows.into_iter().enumerate() {
            self = self.push(if i == 0 { "" } else { ", " }).list(row);
        }
        self
    }

    /// The text with each placeholder rendered by sqlx as it takes the value, and the
    /// values; an error if a `?` of the template was left unbound.
    fn render<'q, D: Exec>(self) -> Result<(String, D::Arguments<'q>), sqlx::Error> {
        if !self.rest.is_empty() {
            return Err(sqlx::Error::Protocol(format!(
                "a statement left a placeholder unbound: …{}",
                self.rest
            )));
        }
        let mut text = String::new();
        let mut args = D::Arguments::default();
        for part in self.parts {
            match part {
                Part::Text(t) => text.push_str(&t),
                Part::Value(v) => {
                    D::add(&mut args, v).map_err(sqlx::Error::Encode)?;
                    args.format_placeholder(&mut text)
                        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                }
            }
        }
        Ok((text, args))
    }
}

/// Rows changed by a statement, on any backend.
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// Running [`Sql`] on a connection of a database, its rows parsed one by one as they arrive
/// (10,000 raw rows and their records are never in memory at once).
pub(crate) trait Exec: Database {
    fn add(args: &mut Self::Arguments<'_>, value: Value) -> Result<(), sqlx::error::BoxDynError>;

    /// Runs `q`; returns how many rows it changed.
    fn execute<'e>(
        conn: &'e mut Self::Connection,
        q: Sql,
    ) -> BoxFuture<'e, Result<u64, StoreError>>;

    /// Every row `q` reads, each parsed by `parse`.
    fn all<'e, T: Send + 'e>(
        conn: &'e mut Self::Connection,
        q: Sql,
        parse: impl FnMut(&Self::Row) -> Result<T, StoreError> + Send + 'e,
    ) -> BoxFuture<'e, Result<Vec<T>, StoreError>>;
}

impl<DB> Exec for DB
where
    DB: Database<QueryResult: Affected>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    fn add(args: &mut DB::Arguments<'_>, value: Value) -> Result<(), sqlx::error::BoxDynError> {
        match value {
            Value::Int(v) => args.add(v),
            Value::Text(v) => args.add(v),
            Value::Flag(v) => args.add(v),
        }
    }

    fn execute<'e>(conn: &'e mut DB::Connection, q: Sql) -> BoxFuture<'e, Result<u64, StoreError>> {
        Box::pin(async move {
            let (text, args) = q.render::<DB>()?;
            let done = conn.execute(sqlx::query_with(&text, args)).await?;
            Ok(done.affected())
        })
    }

    fn all<'e, T: Send + 'e>(
        conn: &'e mut DB::Connection,
        q: Sql,
        mut parse: impl FnMut(&DB::Row) -> Result<T, StoreError> + Send + 'e,
    ) -> BoxFuture<'e, Result<Vec<T>, StoreError>> {
        Box::pin(async move {
            let (text, args) = q.render::<DB>()?;
            let mut rows = conn.fetch(sqlx::query_with(&text, args));
            let mut parsed = Vec::new();
            while let Some(row) = rows.try_next().await? {
                parsed.push(parse(&row)?);
            }
            Ok(parsed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered<D: Exec>(q: Sql) -> String {
        q.render::<D>().unwrap().0
    }

    #[test]
    fn placeholders_are_each_dialects_own() {
        let q = || {
            sql("UPDATE t SET a = ? WHERE b = ? AND c IN ")
                .bind(1_i64)
                .bind("x")
                .list([2_i64, 3])
                .push(" AND d = ")
                .bind(true)
        };
        assert_eq!(
            rendered::<sqlx::Sqlite>(q()),
            "UPDATE t SET a = ? WHERE b = ? AND c IN (?, ?) AND d = ?"
        );
        assert_eq!(
            rendered::<sqlx::Postgres>(q()),
            "UPDATE t SET a = $1 WHERE b = $2 AND c IN ($3, $4) AND d = $5"
        );
    }

    #[test]
    fn an_empty_list_matches_nothing_on_either_dialect() {
        let q = || sql("SELECT 1 WHERE 1 IN ").list(Vec::<i64>::new());
        assert_eq!(rendered::<sqlx::Sqlite>(q()), "SELECT 1 WHERE 1 IN (NULL)");
        assert_eq!(
            rendered::<sqlx::Postgres>(q()),
            "SELECT 1 WHERE 1 IN (NULL)"
        );
    }

    #[test]
    fn rows_make_a_multi_row_values_list() {
        let rows =
            [(1, "x"), (2, "y")].map(|(a, b)| vec![Value::from(i64::from(a)), Value::from(b)]);
        let q = sql("INSERT INTO t (a, b) VALUES ").rows(rows);
        assert_eq!(
            rendered::<sqlx::Postgres>(q),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn an_unbound_placeholder_is_an_error_not_a_statement() {
        let err = sql("SELECT ? + ?")
            .bind(1_i64)
            .render::<sqlx::Sqlite>()
            .unwrap_err();
        assert!(err.to_string().contains("unbound"), "{err}");
    }

    #[test]
    fn times_bind_as_unix_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(Value::from(t), Value::Int(Some(1_700_000_000_123)));
        assert_eq!(Value::from(None::<DateTime<Utc>>), Value::Int(None));
    }
}
