//! `pincher daemon`: the rules scheduler alone, until SIGINT or SIGTERM. Any number may run
//! against one PostgreSQL database: each slot runs once.

use std::time::Duration;

use clap::Args;

use super::Outcome;
use crate::config::Settings;
use crate::scheduler;

/// `pincher daemon`
#[derive(Debug, Args)]
pub struct Opts {}

/// Runs the scheduler until a signal, then lets the current steps finish within
/// `server.drain_timeout_secs` and records what could not.
pub async fn run(_: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let drain = Duration::from_secs(settings.server.drain_timeout_secs);
    let ctx = super::context(settings, true).await?;
    let replica = scheduler::replica_name();
    let signalled = super::serve::shutdown_signal();
    let mut scheduler = tokio::spawn(scheduler::run(ctx.clone(), replica));
    tokio::select! {
        () = signalled => {}
        ended = &mut scheduler => {
            ended?;
            return Ok(Outcome::Success);
        }
    }
    tracing::info!(
        drain_timeout_secs = drain.as_secs(),
        rule_runs = ctx.rule_runs.len(),
        "stopping; finishing the current steps"
    );
    let deadline = tokio::time::Instant::now() + drain;
    scheduler::drain(&ctx, deadline).await;
    let _ = scheduler.await;
    ctx.db.close().await;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}
