//! `pincher runs list|show`: the recorded action runs, through the same repository as
//! `/runs`.

use clap::{Args, Subcommand};
use uuid::Uuid;

use super::{Outcome, UsageError, open_database, rfc3339, with_stdout};
use crate::config::Settings;
use crate::db::runs as repo;
use crate::domain::run::{Run, RunFilter, RunOutcome, Trigger};
use crate::render::{OutputFormat, write_fields, write_json, write_table};

/// `pincher runs …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: RunsCommand,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Recorded runs, newest first.
    List {
        /// Only runs of this action, e.g. aws.ec2.stop.
        #[arg(long)]
        action: Option<String>,
        /// Only runs that ended this way: running, ok, partial, failed or abandoned.
        #[arg(long, value_parser = outcome)]
        outcome: Option<RunOutcome>,
        /// Only runs from here: cli, http or rule.
        #[arg(long, value_parser = trigger)]
        trigger: Option<Trigger>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One run, with the result for each target.
    Show {
        /// The run's id.
        id: Uuid,
    },
}

fn outcome(text: &str) -> Result<RunOutcome, String> {
    RunOutcome::parse(text)
        .ok_or_else(|| "expected running, ok, partial, failed or abandoned".to_owned())
}

fn trigger(text: &str) -> Result<Trigger, String> {
    Trigger::parse(text).ok_or_else(|| "expected cli, http or rule".to_owned())
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let db = open_database(&settings).await?;
    let output = opts.output;
    match opts.command {
        RunsCommand::List {
            action,
            outcome,
            trigger,
            limit,
        } => {
            if let Some(name) = &action
                && crate::actions::find(name).is_none()
            {
                return Err(UsageError(format!(
                    "--action {name:?}: no such action (see `pincher actions list`)"
                ))
                .into());
            }
            let filter = RunFilter {
                action,
                outcome,
                trigger,
            };
            let page = repo::list(&db, &filter, limit.clamp(1, 500), None).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &page.items),
                OutputFormat::Table => write_table(
                    out,
                    &[
                        "id", "action", "outcome", "trigger", "actor", "dry run", "started",
                        "targets",
                    ],
                    page.items
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.to_string(),
                                r.action.clone(),
                                r.outcome.as_str().to_owned(),
                                r.trigger.as_str().to_owned(),
                                r.actor.clone(),
                                if r.dry_run { "yes" } else { "" }.to_owned(),
                                rfc3339(Some(r.started_at)),
                                r.results.len().to_string(),
                            ]
                        })
                        .collect(),
                ),
            })?;
        }
        RunsCommand::Show { id } => {
            let run = repo::get(&db, id).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &run),
                OutputFormat::Table => show(out, &run),
            })?;
        }
    }
    db.close().await;
    Ok(Outcome::Success)
}

fn show(out: &mut dyn std::io::Write, run: &Run) -> std::io::Result<()> {
    write_fields(
        out,
        &[
            ("id", run.id.to_string()),
            ("action", run.action.clone()),
            ("outcome", run.outcome.as_str().to_owned()),
            ("trigger", run.trigger.as_str().to_owned()),
            ("actor", run.actor.clone()),
            ("dry run", run.dry_run.to_string()),
            ("started", rfc3339(Some(run.started_at))),
            ("finished", rfc3339(run.finished_at)),
            ("params", run.params.to_string()),
            ("error", run.error.clone().unwrap_or_default()),
        ],
    )?;
    if run.results.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    super::actions::write_targets(out, &run.results)
}
