//! The database layer: one connection pool (SQLite or PostgreSQL), embedded migrations for
//! both, and the repositories that own every SQL statement.

pub mod backups;
pub mod services;
pub mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseSettings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once
/// per backend, so one piece of SQL serves both (placeholders are `$1`, `$2`, … in each).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique constraint was violated or a concurrent write won.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached, is overloaded or is locked.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    /// The database URL cannot be parsed.
    #[error("invalid database URL: {0}")]
    Url(#[source] sqlx::Error),
    /// A stored value is not one pincher writes.
    #[error("unexpected stored value: {0}")]
    Corrupt(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// Whether the failure is of the database's availability rather than of the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
            || matches!(self, Self::Migrate(sqlx::migrate::MigrateError::Execute(e)) if is_unavailable(e))
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: too many connections, admin shutdown, crash shutdown, cannot connect
            // now, read-only transaction. SQLite: SQLITE_BUSY (5) and its extended codes.
            matches!(
                code.as_ref(),
                "53300" | "57P01" | "57P02" | "57P03" | "25006" | "5" | "261" | "517" | "773"
            ) || db.message().contains("database is locked")
        }
        _ => false,
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Query(e)
        }
    }
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool to the configured database.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationStatus {
    /// Version number (the file's numeric prefix).
    pub version: i64,
    /// Description (the rest of the file name).
    pub description: String,
    /// Whether the database has it.
    pub applied: bool,
}

/// Pool sizes for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: usize,
}

impl Db {
    /// Opens a pool. Connections are made lazily, so this succeeds while the database is down;
    /// a SQLite file is created on first use.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let url = settings.url.expose();
        let acquire = Duration::from_secs(settings.acquire_timeout_secs);
        if settings.url.is_postgres() {
            let options = PgConnectOptions::from_str(url).map_err(DbError::Url)?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(acquire)
                .connect_lazy_with(options);
            Ok(Self::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(DbError::Url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_millis(settings.busy_timeout_ms));
            // No ping before each acquire (sqlx's default): an embedded connection cannot go
            // stale the way a network one can, and the ping is a round trip to the
            // connection's worker thread on every request (measured in docs/performance.md).
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(settings.max_connections)
                .acquire_timeout(acquire)
                .connect_lazy_with(options);
            Ok(Self::Sqlite(pool))
        }
    }

    /// The engine behind this pool.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = self.migrator();
        on_pool!(self, pool => migrator.run(pool).await?);
        Ok(())
    }

    /// Every migration embedded in the binary, with whether the database has applied it.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        let applied: Vec<i64> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(pool)
                .await
        })
        .or_else(|e| if is_missing_table(&e) { Ok(Vec::new()) } else { Err(e) })?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect())
    }

    /// Whether every embedded migration is applied.
    pub async fn is_migrated(&self) -> Result<bool, DbError> {
        Ok(self.migration_status().await?.iter().all(|m| m.applied))
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Current pool sizes.
    pub fn pool_stats(&self) -> PoolStats {
        on_pool!(self, pool => PoolStats { size: pool.size(), idle: pool.num_idle() })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

fn is_missing_table(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("42P01") || db.message().contains("no such table")
        }
        _ => false,
    }
}
