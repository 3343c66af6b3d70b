//! Running rules: one rule run (its steps in order, each an action run, with a lease renewed
//! while it goes on), the scheduler that claims each due slot with a unique row so that it
//! runs at most once across replicas, and the shutdown that lets work finish or marks it
//! abandoned.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::actions::runner::abandon as abandon_actions;
use crate::actions::{RunOptions, find};
use tracing::Instrument as _;

use crate::app::{Context, spawn_listed};
use crate::config::telemetry;
use crate::db::rules::{self as repo, Scheduled};
use crate::db::{DbError, runs as action_runs};
use crate::domain::rule::{OnFailure, Rule, RuleOutcome, RuleRun, RuleTrigger, StepRun};
use crate::domain::run::{RunOutcome, Trigger};

/// How many missed slots of one rule are recorded at once; older ones are not recorded.
const MISSED_LIMIT: usize = 100;
/// How far back slots are looked for after downtime (or `catch_up_secs`, if longer).
const LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// How long rule runs get, once their current action runs ended or were stopped at shutdown,
/// to record how they ended.
const RECORD_GRACE: Duration = Duration::from_secs(2);

/// This process as the owner of the runs it holds: host, process id and a random suffix.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pincher".into());
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &suffix[..8])
}

fn lease(ctx: &Context) -> Duration {
    Duration::from_secs(ctx.settings.scheduler.lease_secs)
}

fn lease_until(ctx: &Context) -> OffsetDateTime {
    action_runs::now() + lease(ctx)
}

/// Starts a run of `rule` now (`trigger` manual, by `actor`) in a task of its own, held by
/// `owner`; the record exists when this returns. The receiver gets the finished run.
pub async fn start_now(
    ctx: &Context,
    rule: Rule,
    actor: &str,
    dry_run: bool,
    owner: &str,
) -> Result<(Uuid, oneshot::Receiver<RuleRun>), DbError> {
    let run = repo::start(
        &ctx.db,
        &rule,
        None,
        RuleTrigger::Manual,
        actor,
        dry_run,
        owner,
        lease_until(ctx),
    )
    .await?
    .ok_or_else(|| DbError::Conflict("a manual run cannot conflict".into()))?;
    let id = run.id;
    Ok((id, spawn(ctx, rule, run, owner.to_owned())))
}

/// Runs `run` of `rule` in a task of its own, listed in the context's rule runs.
fn spawn(ctx: &Context, rule: Rule, run: RuleRun, owner: String) -> oneshot::Receiver<RuleRun> {
    let (done_tx, done) = oneshot::channel();
    let (id, name) = (run.id, rule.name.clone());
    let task_ctx = ctx.clone();
    let span = tracing::info_span!(
        parent: None,
        "rule run",
        rule = %rule.name,
        run = %run.id,
        otel.name = tracing::field::Empty,
    );
    telemetry::adopt(&span, telemetry::current_parent());
    telemetry::name(&span, &format!("rule {}", rule.name));
    let work = async move {
        let finished = execute(&task_ctx, &rule, run, &owner).await;
        let _ = done_tx.send(finished);
    }
    .instrument(span);
    spawn_listed(ctx, |shared| &shared.rule_runs, id, name, work);
    done
}

/// Runs the steps of `run` in order, each as an action run of the rule, renewing the run's
/// lease until it ends, then records how it ended. A step that does not end `ok` stops the
/// rest under `on_failure: stop`. When the process is stopping, no further step starts and
/// the run ends `abandoned`, saying where.
pub async fn execute(ctx: &Context, rule: &Rule, mut run: RuleRun, owner: &str) -> RuleRun {
    let heartbeat = {
        let (ctx, id, owner) = (ctx.clone(), run.id, owner.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease(&ctx) / 3).await;
                match repo::renew(&ctx.db, id, &owner, lease_until(&ctx)).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(run = %id, error = %e, "cannot renew a rule run's lease")
                    }
                }
            }
        })
    };
    let stopping = ctx.stopping();
    let total = rule.steps.len();
    let mut stopped_before = None;
    let mut failed = false;
    for (index, step) in rule.steps.iter().enumerate() {
        if *stopping.borrow() {
            stopped_before = Some(index);
            break;
        }
        let mut step_run = StepRun {
            index,
            action: step.action.clone(),
            run_id: None,
            outcome: "skipped".into(),
            error: None,
        };
        if failed && rule.on_failure == OnFailure::Stop {
            step_run.error = Some("an earlier step did not end ok (on_failure: stop)".into());
            run.steps.push(step_run);
            continue;
        }
        let outcome = run_step(ctx, rule, &mut run, step_run).await;
        failed |= outcome != RunOutcome::Ok;
    }
    if let Some(first) = stopped_before {
        for (index, step) in rule.steps.iter().enumerate().skip(first) {
            run.steps.push(StepRun {
                index,
                action: step.action.clone(),
                run_id: None,
                outcome: "skipped".into(),
                error: Some("not started: the process was stopping".into()),
            });
        }
    }
    heartbeat.abort();
    let ok = |s: &StepRun| s.outcome == RunOutcome::Ok.as_str();
    let abandoned = run
        .steps
        .iter()
        .position(|s| s.outcome == RunOutcome::Abandoned.as_str());
    (run.outcome, run.error) = match (stopped_before, abandoned) {
        (_, Some(index)) => (
            RuleOutcome::Abandoned,
            Some(format!(
                "step {} of {total} was stopped at shutdown before it ended",
                index + 1
            )),
        ),
        (Some(index), None) => (
            RuleOutcome::Abandoned,
            Some(format!(
                "stopped at shutdown after step {index} of {total}; the rest did not run"
            )),
        ),
        (None, None) if run.steps.iter().all(ok) => (RuleOutcome::Ok, None),
        (None, None) if run.steps.iter().any(ok) => (
            RuleOutcome::Partial,
            Some("some steps did not end ok".into()),
        ),
        (None, None) => (RuleOutcome::Failed, Some("no step ended ok".into())),
    };
    run.finished_at = Some(action_runs::now());
    match repo::finish(&ctx.db, &run).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(run = %run.id, "the rule run was marked abandoned before it ended")
        }
        Err(e) => {
            tracing::error!(run = %run.id, error = %e, "cannot record how the rule run ended")
        }
    }
    tracing::info!(
        rule = %rule.name,
        run = %run.id,
        trigger = run.trigger.as_str(),
        scheduled_for = ?run.scheduled_for,
        dry_run = run.dry_run,
        outcome = run.outcome.as_str(),
        error = run.error.as_deref().unwrap_or_default(),
        "rule run finished"
    );
    run
}

/// Runs one step as an action run of the rule and records it in `run`; returns its outcome.
#[tracing::instrument(name = "step", skip_all, fields(step = step_run.index, action = %step_run.action))]
async fn run_step(
    ctx: &Context,
    rule: &Rule,
    run: &mut RuleRun,
    mut step_run: StepRun,
) -> RunOutcome {
    let Some(action) = find(&step_run.action) else {
        step_run.outcome = RunOutcome::Failed.as_str().into();
        step_run.error = Some(format!("no action {:?}", step_run.action));
        run.steps.push(step_run);
        return RunOutcome::Failed;
    };
    let params = rule.steps[step_run.index].params.clone();
    let options = RunOptions {
        trigger: Trigger::Rule,
        actor: format!("rule:{}", rule.name),
        dry_run: run.dry_run,
        record: true,
    };
    let spawned = match action.spawn(ctx, params, options).await {
        Ok(spawned) => spawned,
        Err(e) => {
            step_run.outcome = RunOutcome::Failed.as_str().into();
            step_run.error = Some(e.to_string());
            run.steps.push(step_run);
            return RunOutcome::Failed;
        }
    };
    step_run.run_id = Some(spawned.id);
    step_run.outcome = RunOutcome::Running.as_str().into();
    run.steps.push(step_run);
    if let Err(e) = repo::record_steps(&ctx.db, run.id, &run.steps).await {
        tracing::warn!(run = %run.id, error = %e, "cannot record a rule run's step");
    }
    let (outcome, error) = match spawned.done.await {
        Ok(action_run) => (action_run.outcome, action_run.error),
        Err(_) => (
            RunOutcome::Abandoned,
            Some("the action run was stopped at shutdown".into()),
        ),
    };
    if let Some(last) = run.steps.last_mut() {
        last.outcome = outcome.as_str().into();
        last.error = error;
    }
    if let Err(e) = repo::record_steps(&ctx.db, run.id, &run.steps).await {
        tracing::warn!(run = %run.id, error = %e, "cannot record a rule run's step");
    }
    outcome
}

/// Marks abandoned the runs whose replica stopped renewing their lease, and their action runs.
pub async fn abandon_expired(ctx: &Context) -> Result<usize, DbError> {
    let now = action_runs::now();
    if !repo::any_expired(&ctx.db, now).await? {
        return Ok(0);
    }
    let expired = repo::abandon_expired(&ctx.db, now).await?;
    for run in &expired {
        let running: Vec<Uuid> = run
            .steps
            .iter()
            .filter(|s| s.outcome == RunOutcome::Running.as_str())
            .filter_map(|s| s.run_id)
            .collect();
        action_runs::abandon(
            &ctx.db,
            &running,
            "the replica running its rule stopped (the rule run's lease expired)",
        )
        .await?;
        tracing::warn!(rule = %run.rule, run = %run.id, "rule run abandoned: its lease expired");
    }
    Ok(expired.len())
}

/// The scheduler: every `scheduler.tick_ms` (± 10 %), abandons runs whose lease expired, then claims
/// each rule's due slot and runs it. Returns when the context is stopping.
pub async fn run(ctx: Context, replica: String) {
    let mut stopping = ctx.stopping();
    let tick = Duration::from_millis(ctx.settings.scheduler.tick_ms);
    let mut upcoming = Upcoming::default();
    tracing::info!(replica = %replica, "scheduler started");
    while !*stopping.borrow() {
        if let Err(e) = tick_with(&ctx, &replica, action_runs::now(), &mut upcoming).await {
            tracing::warn!(error = %e, "scheduler tick failed; retrying at the next tick");
        }
        // Replicas started together would otherwise tick in lockstep, one always first.
        let jittered = tick.mul_f64(0.9 + rand::random::<f64>() * 0.2);
        tokio::select! {
            _ = tokio::time::sleep(jittered) => {}
            _ = stopping.changed() => {}
        }
    }
    tracing::info!(replica = %replica, "scheduler stopped");
}

/// Each rule's next fire time after its cursor (its last slot, or when its schedule began),
/// kept between ticks so that a rule that is not due costs no cron search.
#[derive(Debug, Default)]
struct Upcoming(BTreeMap<Uuid, (i64, OffsetDateTime, Option<OffsetDateTime>)>);

impl Upcoming {
    /// Whether `rule`, at `revision` with `cursor`, is known not to be due at `now`.
    fn not_due(
        &self,
        rule: Uuid,
        revision: i64,
        cursor: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        self.0.get(&rule).is_some_and(|(rev, after, next)| {
            *rev == revision && *after == cursor && next.is_none_or(|next| next > now)
        })
    }
}

/// One pass of the scheduler at `now`.
pub async fn tick_once(ctx: &Context, replica: &str, now: OffsetDateTime) -> Result<(), DbError> {
    tick_with(ctx, replica, now, &mut Upcoming::default()).await
}

async fn tick_with(
    ctx: &Context,
    replica: &str,
    now: OffsetDateTime,
    upcoming: &mut Upcoming,
) -> Result<(), DbError> {
    abandon_expired(ctx).await?;
    let rules = repo::scheduled(&ctx.db, true).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let last: BTreeMap<Uuid, OffsetDateTime> =
        repo::last_slots(&ctx.db).await?.into_iter().collect();
    let running: BTreeSet<Uuid> = repo::running_rules(&ctx.db).await?.into_iter().collect();
    let catch_up = Duration::from_secs(ctx.settings.scheduler.catch_up_secs);
    let oldest = now - catch_up.max(LOOKBACK);
    let stopping = ctx.stopping();
    for Scheduled { rule, since } in rules {
        if *stopping.borrow() {
            break;
        }
        let cursor = last
            .get(&rule.id)
            .copied()
            .map_or(since, |slot| slot.max(since));
        if upcoming.not_due(rule.id, rule.revision, cursor, now) {
            continue;
        }
        let Some(schedule) = rule.parsed_schedule() else {
            continue;
        };
        let after = cursor.max(oldest);
        let slots = schedule.slots(after, now, MISSED_LIMIT + 1);
        let Some((&latest, older)) = slots.split_last() else {
            let next = schedule.next_after(after);
            upcoming.0.insert(rule.id, (rule.revision, cursor, next));
            continue;
        };
        for &slot in older {
            let why = if now - slot > catch_up {
                "more than scheduler.catch_up_secs late: no scheduler was running"
            } else {
                "superseded by a later slot, which ran instead"
            };
            repo::miss(&ctx.db, &rule, slot, replica, why).await?;
        }
        if now - latest > catch_up {
            repo::miss(
                &ctx.db,
                &rule,
                latest,
                replica,
                "more than scheduler.catch_up_secs late: no scheduler was running",
            )
            .await?;
            continue;
        }
        if running.contains(&rule.id) {
            repo::miss(
                &ctx.db,
                &rule,
                latest,
                replica,
                "the rule's previous run was still going",
            )
            .await?;
            continue;
        }
        let claimed = repo::start(
            &ctx.db,
            &rule,
            Some(latest),
            RuleTrigger::Schedule,
            replica,
            false,
            replica,
            lease_until(ctx),
        )
        .await?;
        if let Some(run) = claimed {
            tracing::info!(rule = %rule.name, slot = %latest, run = %run.id, "rule slot claimed");
            drop(spawn(ctx, rule, run, replica.to_owned()));
        }
    }
    Ok(())
}

/// Stops the work in progress for a shutdown: no further step or slot starts; action runs get
/// until `deadline` to end and are then stopped and recorded abandoned; rule runs then record
/// how they ended, or are recorded abandoned.
pub async fn drain(ctx: &Context, deadline: tokio::time::Instant) {
    ctx.stop();
    let unfinished = ctx
        .in_flight
        .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    abandon_actions(
        ctx,
        &unfinished,
        "the process shut down before the run finished",
    )
    .await;
    let rules = ctx.rule_runs.drain(RECORD_GRACE).await;
    for (id, rule) in rules {
        let run = RuleRun {
            finished_at: Some(action_runs::now()),
            outcome: RuleOutcome::Abandoned,
            error: Some("the process shut down before the run finished".into()),
            ..match repo::get_run(&ctx.db, id).await {
                Ok(run) => run,
                Err(e) => {
                    tracing::error!(rule = %rule, run = %id, error = %e, "cannot mark a rule run abandoned");
                    continue;
                }
            }
        };
        if let Err(e) = repo::finish(&ctx.db, &run).await {
            tracing::error!(rule = %rule, run = %id, error = %e, "cannot mark a rule run abandoned");
        } else {
            tracing::warn!(rule = %rule, run = %id, "rule run abandoned at shutdown");
        }
    }
}
