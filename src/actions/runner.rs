//! Running an action as a run: its record (written before it starts when it changes something
//! or was asked to be recorded, finished when it ends), its metrics and log lines, and the runs
//! in progress that shutdown waits for or marks abandoned.

use std::time::Instant;

use futures::FutureExt;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Action, ActionError, Approval, Assessment, Preapproved, RunEnv, Valid};
use crate::app::{Context, Unfinished, spawn_listed};
use crate::config::telemetry;
use crate::db::runs as repo;
use crate::domain::ValidationErrors;
use crate::domain::run::{Run, RunOutcome, Trigger};
use crate::metrics::METRICS;
use crate::plugins::{NoProgress, Progress};

/// How a run is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Where it comes from.
    pub trigger: Trigger,
    /// Who runs it: the API token's name, `cli`, or the rule.
    pub actor: String,
    /// List and check, change nothing.
    pub dry_run: bool,
    /// Record it even when the action changes nothing.
    pub record: bool,
}

/// A finished run: the action's result, and its record as written (or why it could not be).
#[derive(Debug)]
pub struct Finished<O> {
    /// The outcome, or why there is none.
    pub result: Result<O, ActionError>,
    /// The run as recorded; `None` when it was not recorded.
    pub run: Option<Run>,
    /// Why the record could not be written or finished, when it could not.
    pub record_error: Option<String>,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The params were refused.
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// The run could not be recorded, so it was not started.
    #[error("the run could not be recorded: {0}")]
    Record(#[from] crate::db::DbError),
}

/// A run started in the background.
#[derive(Debug)]
pub struct Spawned {
    /// Its id (the record exists already).
    pub id: Uuid,
    /// The finished record, when the run ends.
    pub done: oneshot::Receiver<Run>,
}

/// Marks `runs` abandoned, for a process that stops before they finished.
pub async fn abandon(ctx: &Context, runs: &[Unfinished], why: &str) {
    if runs.is_empty() {
        return;
    }
    for (_, action) in runs {
        METRICS
            .action_runs
            .with_label_values(&[action, RunOutcome::Abandoned.as_str()])
            .inc();
    }
    let ids: Vec<Uuid> = runs.iter().map(|(id, _)| *id).collect();
    match repo::abandon(&ctx.db, &ids, why).await {
        Ok(count) => tracing::warn!(runs = count, reason = why, "action runs abandoned"),
        Err(e) => tracing::error!(error = %e, runs = ids.len(), "cannot mark runs abandoned"),
    }
}

fn new_run<A: Action>(params: &Valid<A::Params>, options: &RunOptions) -> Run {
    Run {
        id: Uuid::now_v7(),
        action: A::NAME.to_owned(),
        params: serde_json::to_value(params.get()).unwrap_or_default(),
        trigger: options.trigger,
        actor: options.actor.clone(),
        dry_run: options.dry_run,
        started_at: repo::now(),
        finished_at: None,
        outcome: RunOutcome::Running,
        error: None,
        results: Vec::new(),
        output: None,
    }
}

/// Whether a run of `A` with `options` is recorded.
fn recorded<A: Action>(options: &RunOptions) -> bool {
    A::CHANGES || options.record
}

/// Runs `A` in this task: records it when it changes something or `options.record` is set
/// (a run that cannot be recorded still runs; [`Finished::record_error`] says why), counts it
/// in the metrics and logs how it ended.
pub async fn execute<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    options: &RunOptions,
    progress: &dyn Progress,
    approval: &dyn Approval,
) -> Finished<A::Outcome> {
    let mut run = new_run::<A>(params, options);
    let mut record_error = None;
    let mut record = recorded::<A>(options);
    if record && let Err(e) = repo::start(&ctx.db, &run).await {
        tracing::warn!(action = A::NAME, error = %e, "the run could not be recorded");
        record_error = Some(e.to_string());
        record = false;
    }
    let (result, unserializable) =
        perform::<A>(ctx, params, &mut run, record, progress, approval, None).await;
    if record && let Err(e) = finished_record(ctx, &run).await {
        record_error = Some(e);
    }
    Finished {
        result,
        run: record.then_some(run),
        record_error: record_error.or(unserializable),
    }
}

/// Records `params` as a started run of `A`, then runs it in a task of its own that
/// finishes the record: it goes on when the caller stops waiting (a request timeout, a client
/// that hangs up), and shutdown waits for it or marks it abandoned.
pub async fn spawn<A: Action>(
    ctx: Context,
    params: Valid<A::Params>,
    options: RunOptions,
) -> Result<Spawned, StartError> {
    let mut run = new_run::<A>(&params, &options);
    repo::start(&ctx.db, &run).await?;
    let id = run.id;
    let (done_tx, done) = oneshot::channel();
    let task_ctx = ctx.clone();
    let parent = telemetry::current_parent();
    let work = async move {
        let (_, failure) = perform::<A>(
            &task_ctx,
            &params,
            &mut run,
            true,
            &NoProgress,
            &Preapproved,
            Some(parent),
        )
        .await;
        if let Err(e) = finished_record(&task_ctx, &run).await {
            tracing::error!(run = %run.id, error = %e, "the run's end could not be recorded");
        } else if let Some(e) = failure {
            tracing::warn!(run = %run.id, error = %e, "run ended without an output");
        }
        let _ = done_tx.send(run);
    };
    spawn_listed(&ctx, |shared| &shared.in_flight, id, A::NAME, work);
    Ok(Spawned { id, done })
}

/// Runs `A`, filling in `run` (outcome, results, output, error, finished_at), counting it in
/// the metrics and logging it (at info when it is `recorded`, else at debug). Returns the
/// action's result and, when its output could not be serialized, why.
async fn perform<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    run: &mut Run,
    recorded: bool,
    progress: &dyn Progress,
    approval: &dyn Approval,
    detached: Option<telemetry::Parent>,
) -> (Result<A::Outcome, ActionError>, Option<String>) {
    let started = Instant::now();
    let env = RunEnv {
        dry_run: run.dry_run,
        actor: &run.actor,
        progress,
        approval,
    };
    let span = match detached {
        None => tracing::info_span!(
            "action",
            action = A::NAME,
            run = %run.id,
            actor = %run.actor,
            otel.name = tracing::field::Empty,
        ),
        Some(parent) => {
            let span = tracing::info_span!(
                parent: None,
                "action",
                action = A::NAME,
                run = %run.id,
                actor = %run.actor,
                otel.name = tracing::field::Empty,
            );
            telemetry::adopt(&span, parent);
            span
        }
    };
    telemetry::name(&span, A::NAME);
    // A panic in an action ends its run as failed rather than leaving it recorded as running.
    let running = std::panic::AssertUnwindSafe(A::run(ctx, params.get(), &env));
    let result = tracing::Instrument::instrument(running.catch_unwind(), span)
        .await
        .unwrap_or_else(|_| {
            tracing::error!(action = A::NAME, "the action panicked");
            Err(ActionError::Internal("the action panicked".into()))
        });
    let mut serialize_error = None;
    match &result {
        Ok(outcome) => {
            let Assessment {
                outcome: how,
                targets,
            } = A::assess(outcome);
            run.outcome = how;
            run.results = targets;
            // Only a recorded run keeps its output: a report's JSON tree is several times the
            // size of its rows.
            if recorded {
                match serde_json::to_value(outcome) {
                    Ok(value) => run.output = Some(value),
                    Err(e) => serialize_error = Some(e.to_string()),
                }
            }
        }
        Err(e) => {
            run.outcome = RunOutcome::Failed;
            run.error = Some(e.to_string());
        }
    }
    run.finished_at = Some(repo::now());
    METRICS.record_action_run(A::NAME, run.outcome, &run.results, started.elapsed());
    macro_rules! finished {
        ($level:ident) => {
            tracing::$level!(
                action = A::NAME,
                run = %run.id,
                actor = %run.actor,
                trigger = run.trigger.as_str(),
                dry_run = run.dry_run,
                outcome = run.outcome.as_str(),
                targets = run.results.len(),
                error = run.error.as_deref().unwrap_or_default(),
                "action run finished"
            )
        };
    }
    if recorded {
        finished!(info);
    } else {
        finished!(debug);
    }
    (result, serialize_error)
}

async fn finished_record(ctx: &Context, run: &Run) -> Result<(), String> {
    match repo::finish(&ctx.db, run).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "run {} was marked abandoned before it finished; its end was not recorded",
            run.id
        )),
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "the run's end could not be recorded");
            Err(e.to_string())
        }
    }
}
