//! `pincher actions list`, and how every command runs an action: a progress bar on a
//! terminal, confirmation before changes (refused without `--yes` when there is no terminal),
//! the run recorded as the CLI's, and its outcome as the exit code.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures::future::BoxFuture;

use super::{Outcome, UsageError, with_stdout};
use crate::actions::runner::execute;
use crate::actions::{Action, ActionError, Approval, Preapproved, RunOptions, Valid, describe};
use crate::app::Context;
use crate::domain::run::{Run, RunOutcome, TargetResult, Trigger};
use crate::plugins::{NoProgress, Progress};
use crate::render::{OutputFormat, write_json, write_table};

/// `pincher actions …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: ActionsCommand,
}

#[derive(Debug, Subcommand)]
enum ActionsCommand {
    /// Every action: name, whether it changes anything, what it does (JSON adds each params
    /// schema, as GET /actions).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Runs the command.
pub fn run(opts: Opts) -> anyhow::Result<Outcome> {
    match opts.command {
        ActionsCommand::List { output } => {
            let actions = describe();
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &actions),
                OutputFormat::Table => write_table(
                    out,
                    &["action", "changes", "summary"],
                    actions
                        .iter()
                        .map(|a| {
                            vec![
                                a.name.to_owned(),
                                if a.changes { "yes" } else { "no" }.to_owned(),
                                a.summary.to_owned(),
                            ]
                        })
                        .collect(),
                ),
            })?;
            Ok(Outcome::Success)
        }
    }
}

/// Checks params built from arguments: a bad value is a usage error (exit 2) naming the
/// field.
pub fn checked<P: crate::actions::Params>(params: P) -> anyhow::Result<Valid<P>> {
    Valid::new(params).map_err(|e| UsageError(e.to_string()).into())
}

/// Runs an action that reads (not recorded), with a progress bar on a terminal.
pub async fn read<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    what: &'static str,
) -> anyhow::Result<A::Outcome> {
    read_with::<A>(ctx, params, progress_bar(what).as_ref()).await
}

/// [`read`] for `--output jsonl` on stdout: each finished part's rows are written at once,
/// one `{"row": …}` line each, and the report keeps only its totals (the final
/// `{"report": …}` line).
pub async fn read_streamed<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    what: &'static str,
) -> anyhow::Result<A::Outcome> {
    let progress = JsonlRows {
        bar: progress_bar(what),
        failed: std::sync::atomic::AtomicBool::new(false),
    };
    let outcome = read_with::<A>(ctx, params, &progress).await?;
    if progress.failed.load(std::sync::atomic::Ordering::Relaxed) {
        anyhow::bail!("cannot write the rows to stdout");
    }
    Ok(outcome)
}

async fn read_with<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    progress: &dyn Progress,
) -> anyhow::Result<A::Outcome> {
    let options = RunOptions {
        trigger: Trigger::Cli,
        actor: "cli".into(),
        dry_run: false,
        record: false,
    };
    execute::<A>(ctx, params, &options, progress, &Preapproved)
        .await
        .result
        .map_err(|e| failure(A::NAME, e))
}

/// Writes each finished part's rows to stdout as JSON lines, beside a progress bar.
struct JsonlRows {
    bar: Box<dyn Progress>,
    failed: std::sync::atomic::AtomicBool,
}

impl Progress for JsonlRows {
    fn start(&self, total: u64) {
        self.bar.start(total);
    }

    fn rows(&self, count: u64) {
        self.bar.rows(count);
    }

    fn advance(&self, label: &str) {
        self.bar.advance(label);
    }

    fn finish(&self) {
        self.bar.finish();
    }

    fn streams(&self) -> bool {
        true
    }

    fn stream(&self, rows: Vec<serde_json::Value>) {
        self.bar.rows(rows.len() as u64);
        let written = with_stdout(|out| {
            for row in rows {
                out.write_all(crate::render::jsonl_row(row).as_bytes())?;
            }
            Ok(())
        });
        if written.is_err() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// How a command asks before it changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// `--dry-run`: change nothing, ask nothing.
    pub dry_run: bool,
    /// `--yes`: do not ask.
    pub yes: bool,
}

impl Consent {
    /// Refuses (exit 2) a change that would need asking when there is no terminal to ask on.
    pub fn check(self, what: &str) -> anyhow::Result<()> {
        if !self.dry_run && !self.yes && !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "refusing to {what} without --yes: there is no terminal to ask on; nothing was \
                 changed"
            ))
            .into());
        }
        Ok(())
    }
}

/// Runs an action that changes something: asks on the terminal unless `--yes` or
/// `--dry-run`, records the run (a record that cannot be written is a warning), and returns
/// the outcome, the run as recorded, and the exit outcome.
pub async fn change<A: Action>(
    ctx: &Context,
    params: &Valid<A::Params>,
    consent: Consent,
    what: &'static str,
) -> anyhow::Result<(A::Outcome, Option<Run>, Outcome)> {
    let options = RunOptions {
        trigger: Trigger::Cli,
        actor: "cli".into(),
        dry_run: consent.dry_run,
        record: true,
    };
    let ask = TerminalApproval;
    let approval: &dyn Approval = if consent.yes || consent.dry_run {
        &Preapproved
    } else {
        &ask
    };
    let progress = progress_bar(what);
    let finished = execute::<A>(ctx, params, &options, progress.as_ref(), approval).await;
    let outcome = finished.result.map_err(|e| failure(A::NAME, e))?;
    let mut exit = match A::assess(&outcome).outcome {
        RunOutcome::Ok => Outcome::Success,
        RunOutcome::Failed => Outcome::Failure,
        _ => Outcome::Partial,
    };
    if let Some(e) = &finished.record_error {
        eprintln!("warning: the run could not be recorded in the database: {e}");
        if exit == Outcome::Success {
            exit = Outcome::Partial;
        }
    }
    Ok((outcome, finished.run, exit))
}

/// An action's failure as the command's error.
fn failure(action: &str, e: ActionError) -> anyhow::Error {
    match e {
        ActionError::Invalid(errors) => UsageError(errors.to_string()).into(),
        ActionError::Declined => anyhow::anyhow!("{e}"),
        other => anyhow::Error::new(other).context(format!("{action} failed")),
    }
}

/// Asks on the terminal, listing what would change.
struct TerminalApproval;

impl Approval for TerminalApproval {
    fn approve<'a>(
        &'a self,
        action: &'static str,
        targets: &'a [TargetResult],
    ) -> BoxFuture<'a, bool> {
        let mut text = format!("{action} would change {} target(s):\n", targets.len());
        for t in targets {
            text.push_str(&format!(
                "  {} {} {} ({})\n",
                t.account.as_deref().unwrap_or("-"),
                t.region.as_deref().unwrap_or("-"),
                t.target,
                t.state_before.as_deref().unwrap_or("?"),
            ));
        }
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{text}Go ahead? [y/N] ");
                let _ = err.flush();
                let mut answer = String::new();
                if std::io::stdin().lock().read_line(&mut answer).is_err() {
                    return false;
                }
                matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
            })
            .await
            .unwrap_or(false)
        })
    }
}

/// Per-target results as a table.
pub fn write_targets(out: &mut dyn Write, targets: &[TargetResult]) -> std::io::Result<()> {
    write_table(
        out,
        &[
            "target", "account", "region", "result", "before", "after", "reason",
        ],
        targets
            .iter()
            .map(|t| {
                vec![
                    t.target.clone(),
                    t.account.clone().unwrap_or_default(),
                    t.region.clone().unwrap_or_default(),
                    t.result.as_str().to_owned(),
                    t.state_before.clone().unwrap_or_default(),
                    t.state_after.clone().unwrap_or_default(),
                    t.reason.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    )
}

/// Prints per-target results as a table on stdout.
pub fn print_targets(targets: &[TargetResult]) -> anyhow::Result<()> {
    with_stdout(|out| write_targets(out, targets)).context("cannot write the results")
}

/// A progress bar on stderr when it is a terminal: parts done, rows so far and the AWS
/// calls retried (throttling) since it started.
struct ProgressBar {
    bar: indicatif::ProgressBar,
    rows: std::sync::atomic::AtomicU64,
    retries_before: u64,
}

impl Progress for ProgressBar {
    fn start(&self, total: u64) {
        self.bar.inc_length(total);
    }

    fn rows(&self, count: u64) {
        self.rows
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    }

    fn advance(&self, label: &str) {
        let rows = self.rows.load(std::sync::atomic::Ordering::Relaxed);
        let retries = crate::metrics::METRICS
            .aws_retries
            .get()
            .saturating_sub(self.retries_before);
        self.bar
            .set_message(format!("{rows} rows · {retries} retries · {label}"));
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A progress bar for `what` on a terminal, nothing otherwise.
pub fn progress_bar(what: &'static str) -> Box<dyn Progress> {
    if !std::io::stderr().is_terminal() {
        return Box::new(NoProgress);
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(what);
    Box::new(ProgressBar {
        bar,
        rows: std::sync::atomic::AtomicU64::new(0),
        retries_before: crate::metrics::METRICS.aws_retries.get(),
    })
}
