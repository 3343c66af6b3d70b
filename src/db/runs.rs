//! The action-runs repository: a row when a recorded run starts, the same row finished when it
//! ends, and the listing of runs newest first.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, on_pool, on_reader};
use crate::domain::run::{Run, RunFilter, RunOutcome, TargetResult, Trigger};

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    action: String,
    params: String,
    triggered_by: String,
    actor: String,
    dry_run: bool,
    started_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    outcome: String,
    error: Option<String>,
    results: String,
    output: Option<String>,
}

impl TryFrom<RunRow> for Run {
    type Error = DbError;

    fn try_from(row: RunRow) -> Result<Self, DbError> {
        fn parse<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, DbError> {
            serde_json::from_str(text).map_err(|e| {
                DbError::Corrupt(format!("action_runs.{column} is not valid JSON: {e}"))
            })
        }
        Ok(Self {
            id: row.id,
            params: parse(&row.params, "params")?,
            trigger: Trigger::parse(&row.triggered_by).ok_or_else(|| {
                DbError::Corrupt(format!("unknown trigger {:?}", row.triggered_by))
            })?,
            outcome: RunOutcome::parse(&row.outcome)
                .ok_or_else(|| DbError::Corrupt(format!("unknown outcome {:?}", row.outcome)))?,
            results: parse::<Vec<TargetResult>>(&row.results, "results")?,
            output: row
                .output
                .as_deref()
                .map(|text| parse(text, "output"))
                .transpose()?,
            action: row.action,
            actor: row.actor,
            dry_run: row.dry_run,
            started_at: row.started_at,
            finished_at: row.finished_at,
            error: row.error,
        })
    }
}

const COLUMNS: &str = "id, action, params, triggered_by, actor, dry_run, started_at, finished_at, \
                       outcome, error, results, output";

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Corrupt(e.to_string()))
}

/// The time as PostgreSQL keeps it (microseconds), so values read back compare equal on
/// both backends.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// Records a run that is starting (outcome `running`).
#[tracing::instrument(level = "debug", name = "db runs.start", skip_all, fields(otel.kind = "client"))]
pub async fn start(db: &Db, run: &Run) -> Result<(), DbError> {
    let params = json_text(&run.params)?;
    let results = json_text(&run.results)?;
    on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO action_runs (id, action, params, triggered_by, actor, dry_run, started_at, \
             outcome, results) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(run.id)
        .bind(&run.action)
        .bind(&params)
        .bind(run.trigger.as_str())
        .bind(&run.actor)
        .bind(run.dry_run)
        .bind(run.started_at)
        .bind(run.outcome.as_str())
        .bind(&results)
        .execute(pool)
        .await
        .map(drop)
    })?;
    Ok(())
}

/// Records how a running run ended. Returns whether the row was still `running` (a run
/// already marked `abandoned` is left so).
#[tracing::instrument(level = "debug", name = "db runs.finish", skip_all, fields(otel.kind = "client"))]
pub async fn finish(db: &Db, run: &Run) -> Result<bool, DbError> {
    let results = json_text(&run.results)?;
    let output = run.output.as_ref().map(json_text).transpose()?;
    let updated = on_pool!(db, pool => {
        sqlx::query(
            "UPDATE action_runs SET finished_at = $2, outcome = $3, error = $4, results = $5, \
             output = $6 WHERE id = $1 AND outcome = 'running'",
        )
        .bind(run.id)
        .bind(run.finished_at)
        .bind(run.outcome.as_str())
        .bind(&run.error)
        .bind(&results)
        .bind(&output)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(updated == 1)
}

/// Marks these runs `abandoned` if they are still `running`; returns how many were.
#[tracing::instrument(level = "debug", name = "db runs.abandon", skip_all, fields(otel.kind = "client"))]
pub async fn abandon(db: &Db, ids: &[Uuid], reason: &str) -> Result<u64, DbError> {
    let mut abandoned = 0;
    for id in ids {
        abandoned += on_pool!(db, pool => {
            sqlx::query(
                "UPDATE action_runs SET outcome = 'abandoned', finished_at = $2, error = $3 \
                 WHERE id = $1 AND outcome = 'running'",
            )
            .bind(id)
            .bind(now())
            .bind(reason)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
    }
    Ok(abandoned)
}

/// One run by id.
#[tracing::instrument(level = "debug", name = "db runs.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &Db, id: Uuid) -> Result<Run, DbError> {
    let row: Option<RunRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM action_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })?;
    row.ok_or_else(|| DbError::NotFound(format!("run {id}")))?
        .try_into()
}

/// The newest finished `ok` runs of `action`, at most `limit`, newest first, as (id, when it
/// finished, params): enough to pick one without reading any output.
#[tracing::instrument(level = "debug", name = "db runs.latest_ok", skip_all, fields(otel.kind = "client"))]
pub async fn latest_ok(
    db: &Db,
    action: &str,
    limit: u32,
) -> Result<Vec<(Uuid, OffsetDateTime, serde_json::Value)>, DbError> {
    let rows: Vec<(Uuid, Option<OffsetDateTime>, String)> = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT id, finished_at, params FROM action_runs WHERE action = $1 \
             AND outcome = 'ok' AND output IS NOT NULL ORDER BY id DESC LIMIT $2",
        )
        .bind(action)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter()
        .filter_map(|(id, finished, params)| Some((id, finished?, params)))
        .map(|(id, finished, params)| {
            serde_json::from_str(&params)
                .map(|params| (id, finished, params))
                .map_err(|e| DbError::Corrupt(format!("action_runs.params is not valid JSON: {e}")))
        })
        .collect()
}

/// One page of runs, newest first.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// The runs on this page.
    pub items: Vec<Run>,
    /// Id of the last item when more follow (the position to continue after).
    pub next_before: Option<Uuid>,
}

/// Lists runs matching `filter`, newest first, `limit` at a time, older than `before`.
#[tracing::instrument(level = "debug", name = "db runs.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(
    db: &Db,
    filter: &RunFilter,
    limit: u32,
    before: Option<Uuid>,
) -> Result<RunPage, DbError> {
    let fetch = i64::from(limit) + 1;
    let rows: Vec<RunRow> = on_reader!(db, pool => {
        let mut qb = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM action_runs WHERE 1 = 1"));
        if let Some(action) = &filter.action {
            qb.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(outcome) = filter.outcome {
            qb.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(trigger) = filter.trigger {
            qb.push(" AND triggered_by = ").push_bind(trigger.as_str());
        }
        if let Some(before) = before {
            qb.push(" AND id < ").push_bind(before);
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(fetch);
        qb.build_query_as().fetch_all(pool).await
    })?;
    let mut items: Vec<Run> = rows
        .into_iter()
        .map(Run::try_from)
        .collect::<Result<_, _>>()?;
    let next_before = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(RunPage { items, next_before })
}
