//! Rows from a MySQL/MariaDB or PostgreSQL database, as the original emulator read them from
//! its RDS source: tables `pinterest_data`, `geolocation_data` and `user_data`, row k of each
//! read with `LIMIT k, 1` semantics, every column by name. Timestamps become
//! `YYYY-MM-DD HH:MM:SS` text, as Python's `str(datetime)` wrote them.

use crate::posts::Post;
use serde_json::{Map, Value};
use shared::RecordType;
use sqlx::{Column, Row};

/// The source table of each record type.
pub fn table_of(record_type: RecordType) -> &'static str {
    match record_type {
        RecordType::Pin => "pinterest_data",
        RecordType::Geo => "geolocation_data",
        RecordType::User => "user_data",
    }
}

/// Why posts could not be read from the source database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached.
    #[error("database {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A row could not be read.
    #[error("reading {table} row {row}: {source}")]
    Read {
        /// The table.
        table: &'static str,
        /// The row's number, from 1.
        row: u64,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// A column has a type the runner cannot turn into JSON.
    #[error("{table}.{column}: unsupported column type {type_name}; cast it to text, integer or float in a view")]
    Type {
        /// The table.
        table: &'static str,
        /// The column.
        column: String,
        /// Its SQL type.
        type_name: String,
    },
    /// The URL is neither `postgres://` nor `mysql://`.
    #[error("`{0}` is not a postgres:// or mysql:// URL")]
    Scheme(String),
}

/// A connection to the source database.
pub enum Database {
    /// A PostgreSQL pool.
    Postgres(sqlx::PgPool),
    /// A MySQL or MariaDB pool.
    MySql(sqlx::MySqlPool),
}

impl Database {
    /// Connects to the database `url` names; errors show the URL without its password.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        let err = |source| DbError::Connect {
            url: redact(url),
            source,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(
                sqlx::PgPool::connect(url).await.map_err(err)?,
            ))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            Ok(Database::MySql(
                sqlx::MySqlPool::connect(&url).await.map_err(err)?,
            ))
        } else {
            Err(DbError::Scheme(redact(url)))
        }
    }

    /// Row `k` (0-based, in the table's natural order) of a type's table, or `None` past the end.
    pub async fn row(&self, record_type: RecordType, k: u64) -> Result<Option<Value>, DbError> {
        let table = table_of(record_type);
        let read = |source| DbError::Read {
            table,
            row: k,
            source,
        };
        match self {
            Database::Postgres(pool) => {
                let sql = format!("SELECT * FROM {table} LIMIT 1 OFFSET {k}");
                let row = sqlx::query(&sql).fetch_optional(pool).await.map_err(read)?;
                row.map(|r| to_json(table, &r)).transpose()
            }
            Database::MySql(pool) => {
                let sql = format!("SELECT * FROM {table} LIMIT {k}, 1");
                let row = sqlx::query(&sql).fetch_optional(pool).await.map_err(read)?;
                row.map(|r| to_json(table, &r)).transpose()
            }
        }
    }

    /// Post `k`: row k of each table (a table past its end contributes no record).
    pub async fn post(&self, k: u64) -> Result<Option<Post>, DbError> {
        let mut post = Vec::with_capacity(3);
        for rt in RecordType::ALL {
            if let Some(v) = self.row(rt, k).await? {
                post.push((rt, v));
            }
        }
        Ok((!post.is_empty()).then_some(post))
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

/// One row as a JSON object, columns in table order, each decoded by its type.
fn to_json<R: Row>(table: &'static str, row: &R) -> Result<Value, DbError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i16>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<chrono::NaiveDateTime>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<chrono::DateTime<chrono::Utc>>:
        sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<chrono::NaiveDate>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut obj = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<i16>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.and_then(serde_json::Number::from_f64).map(Value::Number)
        } else if let Ok(v) = row.try_get::<Option<f32>, _>(i) {
            v.and_then(|f| serde_json::Number::from_f64(f64::from(f)))
                .map(Value::Number)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            v.map(|b| Value::from(i64::from(b)))
        } else if let Ok(v) = row.try_get::<Option<chrono::NaiveDateTime>, _>(i) {
            v.map(|t| Value::from(t.format("%Y-%m-%d %H:%M:%S").to_string()))
        } else if let Ok(v) = row.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i) {
            v.map(|t| Value::from(t.format("%Y-%m-%d %H:%M:%S%:z").to_string()))
        } else if let Ok(v) = row.try_get::<Option<chrono::NaiveDate>, _>(i) {
            v.map(|d| Value::from(d.to_string()))
        } else {
            return Err(DbError::Type {
                table,
                column: column.name().to_string(),
                type_name: sqlx::TypeInfo::name(column.type_info()).to_string(),
            });
        };
        obj.insert(column.name().to_string(), value.unwrap_or(Value::Null));
    }
    Ok(Value::Object(obj))
}
