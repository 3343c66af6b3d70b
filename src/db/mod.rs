//! The database layer: one connection pool (SQLite or PostgreSQL), embedded migrations for
//! both, and the repositories that own every SQL statement.
//!
//! On SQLite, single-statement reads run on connections of their own ([`on_reader!`]): sqlx's
//! pool makes a round trip to a connection's worker thread on every release (a ping, from a
//! task it spawns), which for an embedded connection checks nothing and costs as much as the
//! read itself. The reader connections refuse writes (`PRAGMA query_only`) and go back to their
//! pool as soon as the read is done. WAL lets them read while a write is in progress.
//!
//! Writes to a SQLite file go through one connection. SQLite lets one writer in at a time;
//! with several writer connections, the losers wait in SQLite's busy handler, which sleeps in
//! growing steps (up to 100 ms) and polls, so under concurrent writes most of a write's time
//! was sleep (docs/performance.md). Waiting for the one connection is first come, first
//! served, and a writer starts the moment the one before it commits. The writer, like the
//! readers, is held outside sqlx's pool, whose release pings the connection's worker thread
//! from a task of its own: with one writer that round trip would be part of every write.
//!
//! Single-statement writes ([`write_one!`]) are committed in groups: those that queue while
//! the writer is busy are run by the next writer in one transaction, so a burst of writes
//! pays for one commit (and a WAL that grows, and is checkpointed, once per group rather than
//! once per write). A statement that fails a constraint is undone on its own, as SQLite undoes
//! a failed statement, and the rest of its group commits.

pub mod backups;
pub mod rules;
pub mod runs;
pub mod services;
pub mod tokens;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqliteConnection, SqlitePool};

use crate::config::DatabaseSettings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a PostgreSQL connection may sit idle and still be handed out without a ping.
const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// How often [`Db::close`] looks whether the SQLite connections still in use were released.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// Runs `$body` with `$pool` bound to an executor for writes: SQLite's one writer connection
/// (the pool when the database is in memory), the pool on PostgreSQL. The body is compiled
/// once per backend, so one piece of SQL serves both (placeholders are `$1`, `$2`, … in each);
/// it may use `$pool` once, as an executor or to begin a transaction. Waiting for the writer
/// past the acquire timeout returns the error from the enclosing function.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => match &sqlite.writer {
                Some(writer) => match writer.get().await {
                    Ok(mut writer) => {
                        let $pool: &mut sqlx::SqliteConnection = &mut writer;
                        $body
                    }
                    Err(e) => return Err(e.into()),
                },
                None => {
                    let $pool = &sqlite.pool;
                    $body
                }
            },
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs the single write statement `$body` with `$conn` bound to an executor for writes, and
/// commits it: on a SQLite file in a group with the writes queued beside it (see the module
/// documentation), elsewhere as [`on_pool!`] does. `$body` must evaluate to a
/// `Result<_, sqlx::Error>`, may run on another task and so may use only what it owns (it is
/// moved there), and must be one statement: a group cannot undo half of one.
macro_rules! write_one {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => match &sqlite.writer {
                Some(writer) => {
                    sqlite
                        .grouped(
                            writer,
                            $crate::db::statement(move |$conn: &mut sqlx::SqliteConnection| {
                                Box::pin(async move { $body })
                            }),
                        )
                        .await
                }
                None => {
                    let $conn = &sqlite.pool;
                    $body
                }
            },
            $crate::db::Db::Postgres($conn) => $body,
        }
    };
}
pub(crate) use write_one;

/// Runs the single read statement `$body` with `$conn` bound to an executor for reads: a
/// reader connection on SQLite (the pool when the database is in memory, where another
/// connection would see another database), the pool on PostgreSQL. `$body` must evaluate to a
/// `Result<_, sqlx::Error>` and must not write.
macro_rules! on_reader {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => match &sqlite.readers {
                Some(readers) => match readers.get().await {
                    Ok(mut reader) => {
                        let $conn: &mut sqlx::SqliteConnection = &mut reader;
                        $body
                    }
                    Err(e) => Err(e),
                },
                None => {
                    let $conn = &sqlite.pool;
                    $body
                }
            },
            $crate::db::Db::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_reader;

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
    Sqlite(SqliteDb),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// SQLite's connections: for a file, one connection for writes and transactions and reader
/// connections; for an in-memory database, sqlx's pool for everything (another connection
/// would see another database).
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// Used only for an in-memory database; it opens no connection otherwise.
    pool: SqlitePool,
    /// `None` for an in-memory database.
    writer: Option<Connections>,
    /// `None` for an in-memory database.
    readers: Option<Connections>,
    /// Single-statement writes waiting for the writer.
    group: Arc<Group>,
}

/// A queued write: runs its statement on the connection it is given and returns what tells
/// its caller the outcome once the group's outcome is known, with the reason the group must be
/// rolled back when the statement's failure undid the transaction; or `None`, having run
/// nothing, when its caller is gone. A job dropped unrun tells its caller it was not written.
type Job = Box<
    dyn for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> BoxFuture<'c, Option<(Done, Option<GroupFailed>)>>
        + Send,
>;

/// Tells a write's caller its outcome, given the outcome of its group.
type Done = Box<dyn FnOnce(Result<(), GroupFailed>) + Send>;

/// Why a group's writes were not committed (each caller gets its own copy).
#[derive(Debug, Clone)]
struct GroupFailed(String);

impl From<GroupFailed> for sqlx::Error {
    /// An I/O error: the database failed (it is full, or the disk or a lock failed), not this
    /// write, and the caller may retry it.
    fn from(failed: GroupFailed) -> Self {
        sqlx::Error::Io(std::io::Error::other(failed.0))
    }
}

/// Pins the signature of a statement [`write_one!`] queues.
pub(crate) fn statement<T, F>(f: F) -> F
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    f
}

/// Whether a failed statement may have rolled back the transaction it ran in: SQLite does so
/// on SQLITE_BUSY, NOMEM, INTERRUPT, IOERR and FULL (and sqlx fails this way when the
/// connection itself failed). Other failures, a constraint's above all, undo the statement only.
fn aborts_transaction(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            primary.is_none_or(|code| matches!(code, 5 | 7 | 9 | 10 | 13))
        }
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => false,
        _ => true,
    }
}

/// Writes queued for SQLite's writer, and how many groups and writes were committed.
#[derive(Default)]
struct Group {
    queue: Mutex<Vec<(u64, Job)>>,
    next_id: AtomicU64,
    commits: AtomicU64,
    writes: AtomicU64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .field("writes", &self.writes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Group {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Job)>> {
        // Only pushes and takes happen under the lock, so a panic elsewhere leaves it whole.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, job: Job) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.queue().push((id, job));
        id
    }

    /// Takes job `id` back out of the queue; `false` when a writer already took it.
    fn take_back(&self, id: u64) -> bool {
        let mut queue = self.queue();
        match queue.iter().position(|(queued, _)| *queued == id) {
            Some(at) => {
                drop(queue.remove(at));
                true
            }
            None => false,
        }
    }

    /// Runs every queued job in one transaction on `connection`, then tells each caller.
    async fn run(&self, connection: &mut SqliteConnection) {
        let jobs: Vec<Job> = std::mem::take(&mut *self.queue())
            .into_iter()
            .map(|(_, job)| job)
            .collect();
        if jobs.is_empty() {
            return;
        }
        if let Err((e, jobs)) = self.commit_together(connection, jobs).await {
            tracing::debug!(error = %e, "cannot begin a group commit; writing one by one");
            for job in jobs {
                if let Some((done, _)) = job(&mut *connection).await {
                    done(Ok(()));
                }
            }
        }
    }

    /// Runs `jobs` in one transaction and tells each caller; gives them back unrun when the
    /// transaction cannot begin.
    async fn commit_together(
        &self,
        connection: &mut SqliteConnection,
        jobs: Vec<Job>,
    ) -> Result<(), (sqlx::Error, Vec<Job>)> {
        // IMMEDIATE takes the write lock at once, so a busy database fails here, before any
        // statement ran; then each write runs on its own and meets the failure itself.
        let mut transaction = match connection.begin_with("BEGIN IMMEDIATE").await {
            Ok(transaction) => transaction,
            Err(e) => return Err((e, jobs)),
        };
        let mut done = Vec::with_capacity(jobs.len());
        let mut failed = None;
        // Jobs left unrun after a failure are dropped, which tells their callers.
        for job in jobs {
            if let Some((outcome, aborted)) = job(&mut transaction).await {
                done.push(outcome);
                if aborted.is_some() {
                    failed = aborted;
                    break;
                }
            }
        }
        let outcome = match failed {
            None => transaction
                .commit()
                .await
                .map_err(|e| GroupFailed(format!("committing a group of writes failed: {e}"))),
            Some(reason) => {
                if let Err(e) = transaction.rollback().await {
                    tracing::debug!(error = %e, "rolling back a failed group of writes");
                }
                Err(reason)
            }
        };
        if outcome.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.writes.fetch_add(done.len() as u64, Ordering::Relaxed);
        }
        for done in done {
            done(outcome.clone());
        }
        Ok(())
    }
}

/// A write in the queue: dropped with its caller, it takes the write back out if no writer
/// took it yet, so a caller cancelled while queued writes nothing.
struct Queued<'a> {
    group: &'a Group,
    id: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.group.take_back(self.id);
    }
}

/// The error a caller gets when its write was dropped unrun (its group failed first).
fn not_written() -> sqlx::Error {
    GroupFailed("the write was not run: a write before it in its group failed".into()).into()
}

impl SqliteDb {
    /// Queues `statement` for the writer and waits for its group's commit. The caller that
    /// gets the writer runs the group on a task of its own, so that the group finishes even
    /// when that caller is cancelled; a caller cancelled while its write is queued writes
    /// nothing.
    async fn grouped<T, F>(&self, writer: &Connections, statement: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (sender, mut receiver) = tokio::sync::oneshot::channel::<Result<T, sqlx::Error>>();
        let job: Job = Box::new(move |connection| {
            Box::pin(async move {
                if sender.is_closed() {
                    return None;
                }
                let result = statement(connection).await;
                let aborted = match &result {
                    Err(e) if aborts_transaction(e) => Some(GroupFailed(format!(
                        "another write of its group failed, and the group was rolled back: {e}"
                    ))),
                    _ => None,
                };
                let done: Done = Box::new(move |group| {
                    let outcome = match result {
                        Err(e) => Err(e),
                        Ok(value) => group.map(|()| value).map_err(sqlx::Error::from),
                    };
                    // The caller may be gone; the write stands either way.
                    let _ = sender.send(outcome);
                });
                Some((done, aborted))
            })
        });
        let queued = Queued {
            group: &self.group,
            id: self.group.push(job),
        };
        tokio::select! {
            biased;
            outcome = &mut receiver => return outcome.unwrap_or_else(|_| Err(not_written())),
            connection = writer.get() => match connection {
                Ok(mut connection) => {
                    let group = Arc::clone(&self.group);
                    tokio::spawn(async move { group.run(&mut connection).await });
                }
                Err(e) => {
                    if self.group.take_back(queued.id) {
                        return Err(e);
                    }
                }
            },
        }
        receiver.await.unwrap_or_else(|_| Err(not_written()))
    }

    /// How many groups of writes were committed, and how many writes they held.
    #[cfg(test)]
    fn group_commits(&self) -> (u64, u64) {
        (
            self.group.commits.load(Ordering::Relaxed),
            self.group.writes.load(Ordering::Relaxed),
        )
    }
}

/// Opens SQLite connections with the given options.
#[derive(Debug)]
struct ConnectionManager(SqliteConnectOptions);

impl deadpool::managed::Manager for ConnectionManager {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<SqliteConnection, sqlx::Error> {
        self.0.connect().await
    }

    /// Nothing to check: the connection is embedded, and a read or a transaction that was
    /// cancelled half-way is reset (rolled back) by the connection's worker before it runs the
    /// next command. sqlx's pool pings here instead, a round trip on every release.
    async fn recycle(
        &self,
        _: &mut SqliteConnection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        Ok(())
    }
}

/// SQLite connections opened on demand up to a size and handed out first come, first served:
/// the reader connections (up to `database.max_connections`) and the one writer.
#[derive(Debug, Clone)]
struct Connections(deadpool::managed::Pool<ConnectionManager>);

impl Connections {
    fn new(options: SqliteConnectOptions, size: u32, wait: Duration) -> Result<Self, DbError> {
        let manager = ConnectionManager(options);
        deadpool::managed::Pool::builder(manager)
            .max_size(usize::try_from(size).unwrap_or(usize::MAX))
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map(Self)
            .map_err(|e| DbError::Url(sqlx::Error::Configuration(Box::new(e))))
    }

    /// A connection, waiting for one up to the acquire timeout.
    async fn get(&self) -> Result<deadpool::managed::Object<ConnectionManager>, sqlx::Error> {
        use deadpool::managed::PoolError;
        self.0.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
            PoolError::Closed => sqlx::Error::PoolClosed,
            other => sqlx::Error::Protocol(format!("reader connection: {other}")),
        })
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
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
            // TLS comes from the URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), as
            // libpq takes it. No statement may hold a connection for ever.
            let options = PgConnectOptions::from_str(url)
                .map_err(DbError::Url)?
                .options([(
                    "statement_timeout",
                    format!("{}ms", settings.statement_timeout_ms),
                )]);
            // A connection idle for less than PING_AFTER_IDLE is handed out without a ping:
            // under load that saves a round trip per query (sqlx pings on every acquire by
            // default); one that sat idle longer, as after a quiet spell or a failover, is
            // checked and replaced if dead. HikariCP's `aliveBypassWindowMs` is the same rule.
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(acquire)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
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
                .connect_lazy_with(options.clone());
            let (writer, readers) = if is_in_memory(url) {
                (None, None)
            } else {
                (
                    Some(Connections::new(options.clone(), 1, acquire)?),
                    Some(Connections::new(
                        options.pragma("query_only", "ON"),
                        settings.max_connections,
                        acquire,
                    )?),
                )
            };
            Ok(Self::Sqlite(SqliteDb {
                pool,
                writer,
                readers,
                group: Arc::default(),
            }))
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
        match self {
            Self::Sqlite(SqliteDb {
                writer: Some(writer),
                ..
            }) => migrator.run_direct(&mut *writer.get().await?).await?,
            Self::Sqlite(sqlite) => migrator.run(&sqlite.pool).await?,
            Self::Postgres(pool) => {
                // A migration may run longer than `database.statement_timeout_ms`, which bounds
                // requests: it runs on a connection of its own without that bound, closed after.
                let mut conn = pool.acquire().await?.detach();
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut conn)
                    .await?;
                migrator.run_direct(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Every migration embedded in the binary, with whether the database has applied it.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, DbError> {
        let applied: Vec<i64> = on_reader!(self, conn => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(conn)
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

    /// A round trip to the database (on SQLite, over a reader connection, so that a probe does
    /// not queue behind writes).
    pub async fn ping(&self) -> Result<(), DbError> {
        on_reader!(self, conn => sqlx::query("SELECT 1").execute(conn).await.map(drop))?;
        Ok(())
    }

    /// Current pool sizes (SQLite's writer and reader connections included).
    pub fn pool_stats(&self) -> PoolStats {
        match self {
            Self::Sqlite(sqlite) => {
                let (mut size, mut idle) = (sqlite.pool.size(), sqlite.pool.num_idle());
                for connections in [&sqlite.writer, &sqlite.readers].into_iter().flatten() {
                    let status = connections.0.status();
                    size = size.saturating_add(u32::try_from(status.size).unwrap_or(u32::MAX));
                    idle = idle.saturating_add(status.available);
                }
                PoolStats { size, idle }
            }
            Self::Postgres(pool) => PoolStats {
                size: pool.size(),
                idle: pool.num_idle(),
            },
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(sqlite) => {
                for connections in [&sqlite.writer, &sqlite.readers].into_iter().flatten() {
                    // Idle connections are closed here; one still in use closes when its
                    // statement is done.
                    let idle = connections.0.retain(|_, _| false).removed;
                    connections.0.close();
                    for connection in idle {
                        if let Err(e) = connection.close().await {
                            tracing::debug!(error = %e, "closing a SQLite connection");
                        }
                    }
                    // A closed pool drops each connection as it is released; this returns once
                    // the last one in use is released, as sqlx's pool does on close.
                    while connections.0.status().size > 0 {
                        tokio::time::sleep(CLOSE_POLL).await;
                    }
                }
                sqlite.pool.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
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

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::config::DatabaseUrl;

    async fn sqlite(url: String, connections: u32) -> Db {
        let settings = DatabaseSettings {
            url: DatabaseUrl::new(url),
            max_connections: connections,
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&settings).expect("pool");
        db.migrate().await.expect("migrations");
        db
    }

    /// Runs `sql` on the writer.
    async fn write(db: &Db, sql: &str) -> Result<(), DbError> {
        on_pool!(db, pool => sqlx::query(sql).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// A second connection holding an exclusive lock on the database file in `dir`.
    async fn lock_file(dir: &tempfile::TempDir) -> SqliteConnection {
        let mut lock = SqliteConnectOptions::new()
            .filename(dir.path().join("pincher.db"))
            .connect()
            .await
            .expect("a second connection");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut lock)
            .await
            .expect("lock");
        lock
    }

    fn file_url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("pincher.db").display())
    }

    #[tokio::test]
    async fn sqlite_reader_connections_refuse_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        let written = on_reader!(&db, conn => {
            sqlx::query("CREATE TABLE sneaky (x INTEGER)").execute(conn).await.map(drop)
        });
        let error = written.expect_err("a reader wrote");
        assert!(error.to_string().contains("readonly"), "{error}");
        let made: i64 = on_reader!(&db, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sneaky'")
                .fetch_one(conn)
                .await
        })
        .expect("count");
        assert_eq!(made, 0);
    }

    #[tokio::test]
    async fn a_read_abandoned_half_way_does_not_hide_later_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        // One reader connection, so the abandoned read and the next one share it.
        let db = sqlite(file_url(&dir), 1).await;
        write(
            &db,
            "CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1), (2), (3)",
        )
        .await
        .expect("seed");
        let Db::Sqlite(SqliteDb {
            readers: Some(readers),
            ..
        }) = &db
        else {
            panic!("a SQLite file has reader connections");
        };
        {
            let mut reader = readers.get().await.expect("reader");
            let mut rows = sqlx::query("SELECT x FROM probe").fetch(&mut *reader);
            assert!(rows.next().await.is_some());
        }
        write(&db, "INSERT INTO probe VALUES (4)")
            .await
            .expect("insert");
        let seen: i64 = on_reader!(&db, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM probe").fetch_one(conn).await
        })
        .expect("count");
        assert_eq!(seen, 4);
        assert_eq!(readers.0.status().size, 1);
    }

    #[tokio::test]
    async fn reader_connections_count_in_the_pool_sizes_and_close_with_the_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 4).await;
        let before = db.pool_stats();
        services::count(&db).await.expect("count");
        let after = db.pool_stats();
        assert_eq!(after.size, before.size + 1);
        assert_eq!(after.idle, before.idle + 1);
        db.close().await;
        let closed = services::count(&db).await.expect_err("read after close");
        assert!(closed.is_unavailable(), "{closed}");
    }

    #[tokio::test]
    async fn concurrent_writes_to_a_file_take_turns_instead_of_failing_on_the_lock() {
        // With no busy timeout, a write that finds SQLite's lock taken fails at once: only
        // writes that queue for one connection all get through.
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = DatabaseSettings {
            url: DatabaseUrl::new(file_url(&dir)),
            max_connections: 8,
            busy_timeout_ms: 0,
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&settings).expect("pool");
        db.migrate().await.expect("migrations");
        let results: Vec<_> = futures::stream::iter(0..64)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let spec = crate::domain::service::ServiceSpec {
                        name: crate::domain::service::ServiceName::parse(&format!("svc-{i}"))
                            .expect("a valid name"),
                        display_name: None,
                        description: String::new(),
                        owner: "team".into(),
                        tags: [("service".to_owned(), format!("svc-{i}"))].into(),
                        links: Default::default(),
                        metadata: Default::default(),
                    };
                    services::create(&db, &spec).await
                })
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for result in results {
            result.expect("task").expect("every write gets through");
        }
        assert_eq!(services::count(&db).await.expect("count"), 64);
    }

    #[tokio::test]
    async fn writes_cut_off_while_queued_write_nothing_and_free_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        let spec = |i: usize| crate::domain::service::ServiceSpec {
            name: crate::domain::service::ServiceName::parse(&format!("svc-{i}"))
                .expect("a valid name"),
            display_name: None,
            description: String::new(),
            owner: "team".into(),
            tags: (0..20)
                .map(|t| (format!("k{t}"), format!("v{t}")))
                .collect(),
            links: Default::default(),
            metadata: Default::default(),
        };
        for i in 0..5 {
            services::create(&db, &spec(i)).await.expect("create");
        }
        // The writer is held by a create blocked on another process's lock; twenty more queue
        // for it and are cut off while waiting.
        let mut lock = lock_file(&dir).await;
        let holder = tokio::spawn({
            let db = db.clone();
            let spec = spec(100);
            async move { services::create(&db, &spec).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let cut = futures::future::join_all((200..220).map(|i| {
            let spec = spec(i);
            let db = db.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(100), services::create(&db, &spec)).await
            }
        }))
        .await;
        assert!(
            cut.iter().all(Result::is_err),
            "every queued create was cut off"
        );
        sqlx::query("ROLLBACK")
            .execute(&mut lock)
            .await
            .expect("unlock");
        holder.await.expect("join").expect("the holder's create");
        let after = services::create(&db, &spec(1000))
            .await
            .expect("the writer is free");
        assert_eq!(after.tags.len(), 20);
        let stored = services::list_all(&db, &Default::default())
            .await
            .expect("list");
        let mut names: Vec<_> = stored.iter().map(|s| s.name.as_str().to_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "svc-0", "svc-1", "svc-100", "svc-1000", "svc-2", "svc-3", "svc-4"
            ],
            "the creates cut off while waiting wrote nothing"
        );
        for service in stored {
            let read = services::get(&db, &crate::domain::service::ServiceKey::Id(service.id))
                .await
                .expect("read back");
            assert_eq!(read.tags.len(), 20, "{} is whole", read.name);
        }
    }

    #[tokio::test]
    async fn service_tags_follow_the_tags_column_whoever_writes_it() {
        use crate::domain::service::{ServiceFilter, ServiceName, ServiceSpec};
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        let spec = ServiceSpec {
            name: ServiceName::parse("billing").expect("a valid name"),
            display_name: None,
            description: String::new(),
            owner: "team".into(),
            tags: [("env", "prod"), ("quote\"d", "é \\ ü")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            links: Default::default(),
            metadata: Default::default(),
        };
        services::create(&db, &spec).await.expect("create");
        let tagged = |key: &str, value: &str| {
            let filter = ServiceFilter {
                tags: vec![(key.to_owned(), value.to_owned())],
                ..Default::default()
            };
            let db = db.clone();
            async move { services::list_all(&db, &filter).await.expect("list").len() }
        };
        assert_eq!(tagged("env", "prod").await, 1);
        assert_eq!(tagged("quote\"d", "é \\ ü").await, 1);
        write(&db, r#"UPDATE services SET tags = '{"env":"dev"}'"#)
            .await
            .expect("update");
        assert_eq!(tagged("env", "prod").await, 0);
        assert_eq!(tagged("quote\"d", "é \\ ü").await, 0);
        assert_eq!(tagged("env", "dev").await, 1);
        write(&db, "DELETE FROM services").await.expect("delete");
        assert_eq!(tagged("env", "dev").await, 0);
    }

    #[tokio::test]
    async fn close_waits_for_a_connection_in_use_and_returns_once_it_is_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        let mut lock = lock_file(&dir).await;
        let writing = tokio::spawn({
            let db = db.clone();
            async move { write(&db, "CREATE TABLE t (x)").await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), db.close())
                .await
                .is_err(),
            "close returned while the writer was still in use"
        );
        sqlx::query("ROLLBACK")
            .execute(&mut lock)
            .await
            .expect("unlock");
        tokio::time::timeout(Duration::from_secs(5), db.close())
            .await
            .expect("close returns once the writer is released");
        writing.await.expect("join").expect("the write finished");
    }

    fn service(name: &str, metadata_bytes: usize) -> crate::domain::service::ServiceSpec {
        crate::domain::service::ServiceSpec {
            name: crate::domain::service::ServiceName::parse(name).expect("a valid name"),
            display_name: None,
            description: String::new(),
            owner: "team".into(),
            tags: [("service".to_owned(), name.to_owned())].into(),
            links: Default::default(),
            metadata: [("blob".to_owned(), "x".repeat(metadata_bytes).into())]
                .into_iter()
                .collect(),
        }
    }

    /// Holds SQLite's writer until `release` fires; `held` fires once it has it.
    async fn hold_writer(
        db: Db,
        held: tokio::sync::oneshot::Sender<()>,
        release: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<(), DbError> {
        on_pool!(&db, pool => {
            let _ = held.send(());
            let _ = release.await;
            sqlx::query("SELECT 1").execute(pool).await.map(drop)?
        });
        Ok(())
    }

    /// `creates` spawned while the writer is held, and the release of the writer once every
    /// one of them is queued.
    async fn queue_behind_the_writer(
        db: &Db,
        specs: Vec<crate::domain::service::ServiceSpec>,
    ) -> (
        Vec<tokio::task::JoinHandle<Result<crate::domain::service::Service, DbError>>>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), DbError>>,
    ) {
        let Db::Sqlite(sqlite) = db else {
            panic!("SQLite");
        };
        let (held, is_held) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel();
        let holder = tokio::spawn(hold_writer(db.clone(), held, released));
        is_held.await.expect("the writer is held");
        let count = specs.len();
        let creates = specs
            .into_iter()
            .map(|spec| {
                let db = db.clone();
                tokio::spawn(async move { services::create(&db, &spec).await })
            })
            .collect();
        while sqlite.group.queue().len() < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (creates, release, holder)
    }

    #[tokio::test]
    async fn writes_queued_behind_the_writer_commit_as_one_group_and_a_taken_name_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        services::create(&db, &service("svc-7", 0))
            .await
            .expect("create");
        let Db::Sqlite(sqlite) = &db else {
            panic!("SQLite");
        };
        let before = sqlite.group_commits();
        let specs = (0..20).map(|i| service(&format!("svc-{i}"), 10)).collect();
        let (creates, release, holder) = queue_behind_the_writer(&db, specs).await;
        release.send(()).expect("release");
        holder.await.expect("join").expect("the holder");
        let mut created = 0;
        for (i, create) in creates.into_iter().enumerate() {
            match create.await.expect("join") {
                Ok(service) => {
                    assert_eq!(service.name.as_str(), format!("svc-{i}"));
                    created += 1;
                }
                Err(DbError::Conflict(message)) => assert_eq!(i, 7, "{message}"),
                Err(e) => panic!("svc-{i}: {e}"),
            }
        }
        assert_eq!(created, 19);
        let after = sqlite.group_commits();
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 20),
            "one commit for the twenty queued writes"
        );
        assert_eq!(services::count(&db).await.expect("count"), 20);
        let tagged = services::list_all(
            &db,
            &crate::domain::service::ServiceFilter {
                tags: vec![("service".into(), "svc-19".into())],
                ..Default::default()
            },
        )
        .await
        .expect("list");
        assert_eq!(tagged.len(), 1, "the trigger's rows are committed too");
    }

    #[tokio::test]
    async fn a_write_cancelled_while_queued_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        let (mut creates, release, holder) =
            queue_behind_the_writer(&db, vec![service("cancelled", 10)]).await;
        let cancelled = creates.pop().expect("one create");
        cancelled.abort();
        assert!(cancelled.await.expect_err("aborted").is_cancelled());
        let Db::Sqlite(sqlite) = &db else {
            panic!("SQLite");
        };
        assert_eq!(sqlite.group.queue().len(), 0, "the write left the queue");
        release.send(()).expect("release");
        holder.await.expect("join").expect("the holder");
        services::create(&db, &service("later", 10))
            .await
            .expect("the writer is free");
        let names: Vec<_> = services::list_all(&db, &Default::default())
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["later"]);
    }

    #[tokio::test]
    async fn a_full_database_fails_the_whole_group_and_tells_every_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(file_url(&dir), 2).await;
        // The writer may not grow the file: the first create fits in the pages there are,
        // the second needs overflow pages, and fails with SQLITE_FULL.
        write(&db, "PRAGMA max_page_count = 1")
            .await
            .expect("pragma");
        let specs = vec![
            service("fits", 0),
            service("too-big", 64 * 1024),
            service("after", 0),
        ];
        let (creates, release, holder) = queue_behind_the_writer(&db, specs).await;
        release.send(()).expect("release");
        holder.await.expect("join").expect("the holder");
        let mut outcomes = Vec::new();
        for create in creates {
            outcomes.push(create.await.expect("join"));
        }
        let full = outcomes[1].as_ref().expect_err("too big for the file");
        assert!(full.to_string().contains("full"), "{full}");
        for outcome in [&outcomes[0], &outcomes[2]] {
            let error = outcome.as_ref().expect_err("the group was rolled back");
            assert!(error.is_unavailable(), "{error}");
        }
        assert_eq!(services::count(&db).await.expect("count"), 0);
    }

    #[tokio::test]
    async fn an_in_memory_database_is_read_through_its_own_pool() {
        // Another connection to `:memory:` would see another, empty database.
        let db = sqlite("sqlite::memory:".to_owned(), 1).await;
        assert_eq!(services::count(&db).await.expect("count"), 0);
    }
}
