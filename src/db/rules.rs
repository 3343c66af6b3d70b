//! The rules repository: rules with optimistic concurrency, and their runs — a slot claimed
//! with a unique row, leases renewed while a run goes on and expired ones abandoned, missed
//! slots recorded.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, on_pool, on_reader};
use crate::domain::rule::{
    OnFailure, Rule, RuleOutcome, RuleRun, RuleSpec, RuleTrigger, Step, StepRun,
};
use crate::domain::service::ServiceKey;

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    name: String,
    description: String,
    service: Option<String>,
    schedule: Option<String>,
    timezone: String,
    enabled: bool,
    on_failure: String,
    steps: String,
    revision: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    schedule_since: OffsetDateTime,
}

/// A rule and when its current schedule began.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// The rule.
    pub rule: Rule,
    /// When its schedule (expression, zone, enabled) last changed: its slots start after.
    pub since: OffsetDateTime,
}

fn corrupt(column: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(format!("{column} is not valid: {e}"))
}

impl TryFrom<RuleRow> for Scheduled {
    type Error = DbError;

    fn try_from(row: RuleRow) -> Result<Self, DbError> {
        let on_failure = match row.on_failure.as_str() {
            "stop" => OnFailure::Stop,
            "continue" => OnFailure::Continue,
            other => return Err(corrupt("rules.on_failure", other)),
        };
        let steps: Vec<Step> =
            serde_json::from_str(&row.steps).map_err(|e| corrupt("rules.steps", e))?;
        Ok(Self {
            since: row.schedule_since,
            rule: Rule {
                id: row.id,
                name: row.name,
                description: row.description,
                service: row.service,
                schedule: row.schedule,
                timezone: row.timezone,
                enabled: row.enabled,
                on_failure,
                steps,
                created_at: row.created_at,
                updated_at: row.updated_at,
                revision: row.revision,
            },
        })
    }
}

const COLUMNS: &str = "id, name, description, service, schedule, timezone, enabled, on_failure, \
                       steps, revision, created_at, updated_at, schedule_since";

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Corrupt(e.to_string()))
}

fn name_taken(e: DbError, name: &str) -> DbError {
    match e {
        DbError::Query(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            DbError::Conflict(format!("a rule named {name:?} already exists"))
        }
        other => other,
    }
}

/// One page of rules in name order.
#[derive(Debug, Clone)]
pub struct RulePage {
    /// The rules on this page.
    pub items: Vec<Rule>,
    /// Name of the last item when more follow.
    pub next_after: Option<String>,
}

/// Lists rules in name order, `limit` at a time, after the name `after`.
#[tracing::instrument(level = "debug", name = "db rules.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(db: &Db, limit: u32, after: Option<&str>) -> Result<RulePage, DbError> {
    let rows: Vec<RuleRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rules WHERE (CAST($1 AS TEXT) IS NULL OR name > $1) \
             ORDER BY name LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await
    })?;
    let mut items = rows
        .into_iter()
        .map(|row| Scheduled::try_from(row).map(|s| s.rule))
        .collect::<Result<Vec<_>, _>>()?;
    let next_after = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|r| r.name.clone())
    } else {
        None
    };
    Ok(RulePage { items, next_after })
}

/// Every rule, in name order.
#[tracing::instrument(level = "debug", name = "db rules.list_all", skip_all, fields(otel.kind = "client"))]
pub async fn list_all(db: &Db) -> Result<Vec<Rule>, DbError> {
    Ok(scheduled(db, false)
        .await?
        .into_iter()
        .map(|s| s.rule)
        .collect())
}

/// Every rule with when its schedule began; only the enabled ones with a schedule when
/// `active`.
#[tracing::instrument(level = "debug", name = "db rules.scheduled", skip_all, fields(otel.kind = "client"))]
pub async fn scheduled(db: &Db, active: bool) -> Result<Vec<Scheduled>, DbError> {
    let filter = if active {
        " WHERE enabled AND schedule IS NOT NULL"
    } else {
        ""
    };
    let rows: Vec<RuleRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM rules{filter} ORDER BY name"))
            .fetch_all(pool)
            .await
    })?;
    rows.into_iter().map(Scheduled::try_from).collect()
}

/// One rule by id or name.
#[tracing::instrument(level = "debug", name = "db rules.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &Db, key: &ServiceKey) -> Result<Rule, DbError> {
    let row: Option<RuleRow> = match key {
        ServiceKey::Id(id) => on_reader!(db, pool => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM rules WHERE id = $1"))
                .bind(*id)
                .fetch_optional(pool)
                .await
        })?,
        ServiceKey::Name(name) => on_reader!(db, pool => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM rules WHERE name = $1"))
                .bind(name.as_str())
                .fetch_optional(pool)
                .await
        })?,
    };
    match row {
        Some(row) => Ok(Scheduled::try_from(row)?.rule),
        None => Err(DbError::NotFound(match key {
            ServiceKey::Id(id) => format!("rule {id}"),
            ServiceKey::Name(name) => format!("rule {name:?}"),
        })),
    }
}

/// Creates a rule.
#[tracing::instrument(level = "debug", name = "db rules.create", skip_all, fields(otel.kind = "client"))]
pub async fn create(db: &Db, spec: &RuleSpec) -> Result<Rule, DbError> {
    let at = super::runs::now();
    let steps = json_text(&spec.steps)?;
    let row: RuleRow = on_pool!(db, pool => {
        sqlx::query_as(&format!(
            "INSERT INTO rules (id, name, description, service, schedule, timezone, enabled, \
             on_failure, steps, revision, created_at, updated_at, schedule_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $10) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(spec.name.as_str())
        .bind(&spec.description)
        .bind(spec.service.as_deref())
        .bind(spec.schedule.as_deref())
        .bind(&spec.timezone)
        .bind(spec.enabled)
        .bind(spec.on_failure.as_str())
        .bind(&steps)
        .bind(at)
        .fetch_one(pool)
        .await
        .map_err(|e| name_taken(e.into(), spec.name.as_str()))?
    });
    Ok(Scheduled::try_from(row)?.rule)
}

/// Replaces the writable fields of rule `current`, provided it is still at its revision. A
/// changed schedule (expression, zone or enabled) starts its slots from now.
#[tracing::instrument(level = "debug", name = "db rules.update", skip_all, fields(otel.kind = "client"))]
pub async fn update(db: &Db, current: &Rule, spec: &RuleSpec) -> Result<Rule, DbError> {
    let at = super::runs::now();
    let steps = json_text(&spec.steps)?;
    let reschedule = spec.reschedules(current);
    let row: Option<RuleRow> = on_pool!(db, pool => {
        sqlx::query_as(&format!(
            "UPDATE rules SET name = $1, description = $2, service = $3, schedule = $4, \
             timezone = $5, enabled = $6, on_failure = $7, steps = $8, revision = revision + 1, \
             updated_at = $9, schedule_since = CASE WHEN $10 THEN $9 ELSE schedule_since END \
             WHERE id = $11 AND revision = $12 RETURNING {COLUMNS}"
        ))
        .bind(spec.name.as_str())
        .bind(&spec.description)
        .bind(spec.service.as_deref())
        .bind(spec.schedule.as_deref())
        .bind(&spec.timezone)
        .bind(spec.enabled)
        .bind(spec.on_failure.as_str())
        .bind(&steps)
        .bind(at)
        .bind(reschedule)
        .bind(current.id)
        .bind(current.revision)
        .fetch_optional(pool)
        .await
        .map_err(|e| name_taken(e.into(), spec.name.as_str()))?
    });
    match row {
        Some(row) => Ok(Scheduled::try_from(row)?.rule),
        None => Err(DbError::Conflict(format!(
            "rule {} was changed or deleted by another request; fetch it again and retry",
            current.name
        ))),
    }
}

/// Deletes rule `id` (and its runs), provided it is still at `revision` when one is given.
/// Returns whether a row was deleted.
#[tracing::instrument(level = "debug", name = "db rules.delete", skip_all, fields(otel.kind = "client"))]
pub async fn delete(db: &Db, id: Uuid, revision: Option<i64>) -> Result<bool, DbError> {
    let deleted = on_pool!(db, pool => {
        sqlx::query("DELETE FROM rules WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR revision = $2)")
            .bind(id)
            .bind(revision)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    rule_id: Uuid,
    rule_name: String,
    scheduled_for: Option<OffsetDateTime>,
    triggered_by: String,
    actor: String,
    dry_run: bool,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    outcome: String,
    error: Option<String>,
    steps: String,
}

impl TryFrom<RunRow> for RuleRun {
    type Error = DbError;

    fn try_from(row: RunRow) -> Result<Self, DbError> {
        Ok(Self {
            id: row.id,
            rule_id: row.rule_id,
            rule: row.rule_name,
            scheduled_for: row.scheduled_for,
            trigger: RuleTrigger::parse(&row.triggered_by)
                .ok_or_else(|| corrupt("rule_runs.triggered_by", &row.triggered_by))?,
            actor: row.actor,
            dry_run: row.dry_run,
            started_at: row.started_at,
            finished_at: row.finished_at,
            outcome: RuleOutcome::parse(&row.outcome)
                .ok_or_else(|| corrupt("rule_runs.outcome", &row.outcome))?,
            error: row.error,
            steps: serde_json::from_str(&row.steps).map_err(|e| corrupt("rule_runs.steps", e))?,
        })
    }
}

const RUN_COLUMNS: &str = "id, rule_id, rule_name, scheduled_for, triggered_by, actor, dry_run, \
                           started_at, finished_at, outcome, error, steps";

/// Starts a run of `rule` held by `owner` until `lease_until`: for a scheduled run, only if
/// no replica claimed the slot `scheduled_for` before (the unique row is the claim). Returns
/// the run when this call started it.
#[expect(
    clippy::too_many_arguments,
    reason = "the columns of one insert, each a different thing"
)]
#[tracing::instrument(level = "debug", name = "db rules.start", skip_all, fields(otel.kind = "client"))]
pub async fn start(
    db: &Db,
    rule: &Rule,
    scheduled_for: Option<OffsetDateTime>,
    trigger: RuleTrigger,
    actor: &str,
    dry_run: bool,
    owner: &str,
    lease_until: OffsetDateTime,
) -> Result<Option<RuleRun>, DbError> {
    let row: Option<RunRow> = on_pool!(db, pool => {
        sqlx::query_as(&format!(
            "INSERT INTO rule_runs (id, rule_id, rule_name, scheduled_for, triggered_by, actor, \
             dry_run, started_at, outcome, steps, owner, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', '[]', $9, $10) \
             ON CONFLICT (rule_id, scheduled_for) DO NOTHING RETURNING {RUN_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(rule.id)
        .bind(&rule.name)
        .bind(scheduled_for)
        .bind(trigger.as_str())
        .bind(actor)
        .bind(dry_run)
        .bind(super::runs::now())
        .bind(owner)
        .bind(lease_until)
        .fetch_optional(pool)
        .await
    })?;
    row.map(RuleRun::try_from).transpose()
}

/// Records the slot `scheduled_for` of `rule` as missed (unless it is recorded already).
#[tracing::instrument(level = "debug", name = "db rules.miss", skip_all, fields(otel.kind = "client"))]
pub async fn miss(
    db: &Db,
    rule: &Rule,
    scheduled_for: OffsetDateTime,
    actor: &str,
    why: &str,
) -> Result<bool, DbError> {
    let inserted = on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO rule_runs (id, rule_id, rule_name, scheduled_for, triggered_by, actor, \
             dry_run, finished_at, outcome, error, steps) \
             VALUES ($1, $2, $3, $4, 'schedule', $5, FALSE, $6, 'missed', $7, '[]') \
             ON CONFLICT (rule_id, scheduled_for) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(rule.id)
        .bind(&rule.name)
        .bind(scheduled_for)
        .bind(actor)
        .bind(super::runs::now())
        .bind(why)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(inserted > 0)
}

/// Records the steps of a running run so far.
#[tracing::instrument(level = "debug", name = "db rules.record_steps", skip_all, fields(otel.kind = "client"))]
pub async fn record_steps(db: &Db, id: Uuid, steps: &[StepRun]) -> Result<(), DbError> {
    let steps = json_text(&steps)?;
    on_pool!(db, pool => {
        sqlx::query("UPDATE rule_runs SET steps = $2 WHERE id = $1 AND outcome = 'running'")
            .bind(id)
            .bind(&steps)
            .execute(pool)
            .await
            .map(drop)
    })?;
    Ok(())
}

/// Extends the lease of a running run held by `owner`. Returns whether it is still running
/// (and so still this owner's).
#[tracing::instrument(level = "debug", name = "db rules.renew", skip_all, fields(otel.kind = "client"))]
pub async fn renew(
    db: &Db,
    id: Uuid,
    owner: &str,
    lease_until: OffsetDateTime,
) -> Result<bool, DbError> {
    let renewed = on_pool!(db, pool => {
        sqlx::query(
            "UPDATE rule_runs SET lease_until = $3 \
             WHERE id = $1 AND owner = $2 AND outcome = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(lease_until)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(renewed > 0)
}

/// Records how a run ended, if it is still running.
#[tracing::instrument(level = "debug", name = "db rules.finish", skip_all, fields(otel.kind = "client"))]
pub async fn finish(db: &Db, run: &RuleRun) -> Result<bool, DbError> {
    let steps = json_text(&run.steps)?;
    let finished = on_pool!(db, pool => {
        sqlx::query(
            "UPDATE rule_runs SET finished_at = $2, outcome = $3, error = $4, steps = $5, \
             lease_until = NULL WHERE id = $1 AND outcome = 'running'",
        )
        .bind(run.id)
        .bind(run.finished_at)
        .bind(run.outcome.as_str())
        .bind(&run.error)
        .bind(&steps)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(finished > 0)
}

/// Whether any running run's lease expired before `now` (a read, so that a scheduler tick
/// with nothing to abandon writes nothing).
#[tracing::instrument(level = "debug", name = "db rules.any_expired", skip_all, fields(otel.kind = "client"))]
pub async fn any_expired(db: &Db, now: OffsetDateTime) -> Result<bool, DbError> {
    let found: i64 = on_reader!(db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM rule_runs \
             WHERE outcome = 'running' AND lease_until < $1 LIMIT 1) AS expired",
        )
        .bind(now)
        .fetch_one(pool)
        .await
    })?;
    Ok(found > 0)
}

/// Marks abandoned every running run whose lease expired before `now`; returns them as they
/// were (their steps name the action runs to abandon too).
#[tracing::instrument(level = "debug", name = "db rules.abandon_expired", skip_all, fields(otel.kind = "client"))]
pub async fn abandon_expired(db: &Db, now: OffsetDateTime) -> Result<Vec<RuleRun>, DbError> {
    let rows: Vec<RunRow> = on_pool!(db, pool => {
        sqlx::query_as(&format!(
            "UPDATE rule_runs SET outcome = 'abandoned', finished_at = $1, lease_until = NULL, \
             error = 'the replica running it stopped: its lease expired' \
             WHERE outcome = 'running' AND lease_until < $1 RETURNING {RUN_COLUMNS}"
        ))
        .bind(now)
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter().map(RuleRun::try_from).collect()
}

/// The newest slot recorded for each rule, by rule id.
#[tracing::instrument(level = "debug", name = "db rules.last_slots", skip_all, fields(otel.kind = "client"))]
pub async fn last_slots(db: &Db) -> Result<Vec<(Uuid, OffsetDateTime)>, DbError> {
    let rows: Vec<(Uuid, Option<OffsetDateTime>)> = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT rule_id, MAX(scheduled_for) FROM rule_runs \
             WHERE scheduled_for IS NOT NULL GROUP BY rule_id",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, slot)| Some((id, slot?)))
        .collect())
}

/// The rules that have a run going now, by rule id.
#[tracing::instrument(level = "debug", name = "db rules.running_rules", skip_all, fields(otel.kind = "client"))]
pub async fn running_rules(db: &Db) -> Result<Vec<Uuid>, DbError> {
    let rows: Vec<(Uuid,)> = on_reader!(db, pool => {
        sqlx::query_as("SELECT DISTINCT rule_id FROM rule_runs WHERE outcome = 'running'")
            .fetch_all(pool)
            .await
    })?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// One run by id.
#[tracing::instrument(level = "debug", name = "db rules.get_run", skip_all, fields(otel.kind = "client"))]
pub async fn get_run(db: &Db, id: Uuid) -> Result<RuleRun, DbError> {
    let row: Option<RunRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM rule_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })?;
    row.ok_or_else(|| DbError::NotFound(format!("rule run {id}")))?
        .try_into()
}

/// A rule's runs, newest first (by slot, then start), `limit` at a time, older than `before`.
#[tracing::instrument(level = "debug", name = "db rules.runs_of", skip_all, fields(otel.kind = "client"))]
pub async fn runs_of(
    db: &Db,
    rule: Uuid,
    limit: u32,
    before: Option<Uuid>,
) -> Result<(Vec<RuleRun>, Option<Uuid>), DbError> {
    let rows: Vec<RunRow> = on_reader!(db, pool => {
        sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM rule_runs WHERE rule_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(rule)
        .bind(before.map(|id| id.to_string()))
        .bind(before.unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await
    })?;
    let mut runs = rows
        .into_iter()
        .map(RuleRun::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if runs.len() > limit as usize {
        runs.truncate(limit as usize);
        runs.last().map(|r| r.id)
    } else {
        None
    };
    Ok((runs, next))
}

/// Per rule name: its runs by outcome, and its last success (for the metrics).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunCount {
    /// The rule's name.
    pub rule_name: String,
    /// The outcome.
    pub outcome: String,
    /// How many runs.
    pub runs: i64,
    /// The newest end of a run with this outcome.
    pub last_finished: Option<OffsetDateTime>,
}

/// Run counts and last ends by rule and outcome (for the metrics).
#[tracing::instrument(level = "debug", name = "db rules.run_counts", skip_all, fields(otel.kind = "client"))]
pub async fn run_counts(db: &Db) -> Result<Vec<RunCount>, DbError> {
    let rows = on_reader!(db, pool => {
        sqlx::query_as(
            "SELECT rule_name, outcome, COUNT(*) AS runs, MAX(finished_at) AS last_finished \
             FROM rule_runs WHERE rule_id IN (SELECT id FROM rules) \
             GROUP BY rule_name, outcome ORDER BY rule_name, outcome",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows)
}
