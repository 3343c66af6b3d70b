//! The backup-runs repository: one row per group per backup run, and the last successful
//! backup of each group (for `/metrics`).

use serde::Serialize;
use time::OffsetDateTime;

use super::{Db, DbError, on_pool, on_reader};

/// One group's part of a backup run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BackupRun {
    /// The group.
    pub group_id: String,
    /// Version of the configuration, when it was read.
    pub version: Option<i64>,
    /// MD5 of the stored bytes.
    pub md5: Option<String>,
    /// The backup file, or `s3://bucket/key`.
    pub path: Option<String>,
    /// Size in bytes.
    pub bytes: Option<i64>,
    /// `stored`, `unchanged` or `failed`.
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The last successful (stored or unchanged) backup of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LastSuccess {
    /// The group.
    pub group_id: String,
    /// When that backup run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// Records one group's part of a run.
#[tracing::instrument(level = "debug", name = "db backups.record", skip_all, fields(otel.kind = "client"))]
pub async fn record(db: &Db, run: &BackupRun) -> Result<(), DbError> {
    // Microseconds: what PostgreSQL keeps, so values read back compare equal on both.
    let started_at = run
        .started_at
        .replace_nanosecond(run.started_at.nanosecond() / 1000 * 1000)
        .unwrap_or(run.started_at);
    on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO backup_runs (group_id, version, md5, path, bytes, outcome, error, \
             duration_ms, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&run.group_id)
        .bind(run.version)
        .bind(&run.md5)
        .bind(&run.path)
        .bind(run.bytes)
        .bind(&run.outcome)
        .bind(&run.error)
        .bind(run.duration_ms)
        .bind(started_at)
        .execute(pool)
        .await
        .map(drop)
    })?;
    Ok(())
}

/// Whether a backup run recorded storing (or finding unchanged) a configuration with this
/// MD5: whether pincher wrote a backup with this content.
#[tracing::instrument(level = "debug", name = "db backups.recorded", skip_all, fields(otel.kind = "client"))]
pub async fn recorded(db: &Db, md5: &str) -> Result<bool, DbError> {
    let found: Option<i64> = on_reader!(db, pool => {
        sqlx::query_scalar(
            "SELECT 1 FROM backup_runs WHERE md5 = $1 AND outcome IN ('stored', 'unchanged') \
             LIMIT 1",
        )
        .bind(md5)
        .fetch_optional(pool)
        .await
    })?;
    Ok(found.is_some())
}

/// The most recent runs, newest first; only `group`'s when given.
#[tracing::instrument(level = "debug", name = "db backups.recent", skip_all, fields(otel.kind = "client"))]
pub async fn recent(db: &Db, group: Option<&str>, limit: u32) -> Result<Vec<BackupRun>, DbError> {
    let rows = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT group_id, version, md5, path, bytes, outcome, error, duration_ms, started_at \
             FROM backup_runs WHERE (CAST($1 AS TEXT) IS NULL OR group_id = $1) \
             ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(group)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
    })?;
    Ok(rows)
}

/// When each group was last backed up successfully (stored or unchanged), by group id.
#[tracing::instrument(level = "debug", name = "db backups.last_success_per_group", skip_all, fields(otel.kind = "client"))]
pub async fn last_success_per_group(db: &Db) -> Result<Vec<LastSuccess>, DbError> {
    let rows = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT r.group_id, r.started_at FROM backup_runs r \
             WHERE r.outcome IN ('stored', 'unchanged') AND NOT EXISTS ( \
               SELECT 1 FROM backup_runs n WHERE n.group_id = r.group_id \
               AND n.outcome IN ('stored', 'unchanged') \
               AND (n.started_at > r.started_at OR (n.started_at = r.started_at AND n.id > r.id))) \
             ORDER BY r.group_id",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows)
}

/// How many runs each group had, by outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunCount {
    /// The group.
    pub group_id: String,
    /// `stored`, `unchanged` or `failed`.
    pub outcome: String,
    /// Number of runs.
    pub runs: i64,
}

/// Run counts by group and outcome (for the metrics).
#[tracing::instrument(level = "debug", name = "db backups.run_counts", skip_all, fields(otel.kind = "client"))]
pub async fn run_counts(db: &Db) -> Result<Vec<RunCount>, DbError> {
    let rows: Vec<RunCount> = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT group_id, outcome, COUNT(*) AS runs FROM backup_runs \
             GROUP BY group_id, outcome ORDER BY group_id, outcome",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows)
}
