//! The command line: one clap tree whose commands call into the library, print their result
//! once, and map outcomes to exit codes (0 success, 1 failure, 2 usage, 3 partial).

pub mod actions;
pub mod aws;
pub mod chef;
pub mod config;
pub mod daemon;
pub mod db;
pub mod memory;
pub mod opsmanager;
pub mod rules;
pub mod runs;
pub mod serve;
pub mod services;
pub mod status;
pub mod tokens;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Environment, LogFormat, Settings, logging};

/// pincher: keep the cloud cheap and ops config safe.
#[derive(Debug, Parser)]
#[command(name = "pincher", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML settings file (lowest precedence after the built-in defaults).
    #[arg(
        long,
        global = true,
        env = "PINCHER_CONFIG",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,
    /// Log format on stderr; `auto` is human on a terminal and JSON otherwise.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Global options"
    )]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(serve::Opts),
    /// Inspect the effective settings.
    Config(config::Opts),
    /// Manage the database schema.
    Db(db::Opts),
    /// Manage the service registry.
    Services(Box<services::Opts>),
    /// Check the database and every configured integration, like `/status`.
    Status(status::Opts),
    /// Manage API tokens.
    Tokens(tokens::Opts),
    /// Query the Chef server: nodes, search, status.
    Chef(Box<chef::Opts>),
    /// Back up and restore MongoDB Ops Manager automation configurations.
    Opsmanager(Box<opsmanager::Opts>),
    /// AWS inventory and cost reports, and stopping and starting EC2 and RDS instances.
    Aws(Box<aws::Opts>),
    /// The actions every face runs (reports, backups, changes).
    Actions(actions::Opts),
    /// The recorded action runs.
    Runs(runs::Opts),
    /// Rules: ordered steps of actions, on demand or on a schedule.
    Rules(Box<rules::Opts>),
    /// Run the rules scheduler (any number of replicas on one PostgreSQL database).
    Daemon(daemon::Opts),
    /// Print a shell completion script: `pincher completions bash > /etc/bash_completion.d/pincher`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command into a folder.
    Man {
        /// Write `pincher.1`, `pincher-serve.1`, … into this folder instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some parts failed; the rest was done and the failures were named.
    Partial,
    /// Nothing useful was done, and the output already says why (exit 1, no extra message).
    Failure,
}

/// Exit code of a failure (nothing useful done).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error: bad arguments, or a change refused without `--yes` where
/// there is no terminal to ask on.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a partial success.
pub const EXIT_PARTIAL: u8 = 3;

/// Stack of each runtime worker thread: the main thread's 8 MiB rather than tokio's 2 MiB.
/// A stack overflow aborts the whole server, so the large report futures are boxed and this
/// is the margin on top (address space only: pages are touched as used).
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    memory::keep_large_blocks_mapped();
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(EXIT_PARTIAL),
        Ok(Outcome::Failure) => ExitCode::from(EXIT_FAILURE),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(EXIT_USAGE)
        }
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Prints the manual page, or writes one per command into `out`.
fn man(out: Option<&std::path::Path>) -> anyhow::Result<Outcome> {
    use anyhow::Context;
    let command = <Cli as clap::CommandFactory>::command();
    match out {
        None => {
            with_stdout(|stdout| clap_mangen::Man::new(command).render(stdout))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
        }
    }
    Ok(Outcome::Success)
}

/// An error and its causes on one line, each said once: errors that quote their source in
/// their own message (as sqlx's and the AWS SDK's do) would otherwise repeat it down the
/// chain.
pub fn error_text(err: &anyhow::Error) -> String {
    crate::plugins::sdk::describe_chain(err.as_ref())
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    // These need no settings, so they work whatever the settings say.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "pincher", &mut std::io::stdout());
            return Ok(Outcome::Success);
        }
        Command::Man { out } => return man(out.as_deref()),
        _ => {}
    }
    let env = Environment::load()?;
    let settings = Settings::load(cli.config.as_deref(), &env)?;
    crate::config::limits::install(settings.limits.clone());
    let filter = env
        .get("PINCHER_LOG")
        .or_else(|| env.get("RUST_LOG"))
        .unwrap_or(&settings.log.level)
        .to_owned();
    let target = logging::LogTarget {
        file: settings.log.file.clone(),
        rotation: settings.log.rotation,
        keep_files: settings.log.keep_files,
    };
    let _log = logging::init(
        cli.log_format.unwrap_or(settings.log.format),
        &filter,
        &target,
        &settings.telemetry,
    )?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(opts) => serve::run(opts, settings).await,
            Command::Config(opts) => config::run(opts, &settings),
            Command::Db(opts) => db::run(opts, settings).await,
            Command::Services(opts) => services::run(*opts, settings).await,
            Command::Status(opts) => status::run(opts, settings).await,
            Command::Tokens(opts) => tokens::run(opts, settings).await,
            Command::Chef(opts) => chef::run(*opts, settings).await,
            Command::Opsmanager(opts) => opsmanager::run(*opts, settings).await,
            Command::Aws(opts) => aws::run(*opts, settings).await,
            Command::Actions(opts) => actions::run(opts),
            Command::Runs(opts) => runs::run(opts, settings).await,
            Command::Rules(opts) => rules::run(*opts, settings).await,
            Command::Daemon(opts) => daemon::run(opts, settings).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(Outcome::Success),
        }
    })
}

/// Arguments the command cannot use, found after clap parsed them (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A time as RFC 3339, or nothing when there is none (for tables).
pub(crate) fn rfc3339(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// Runs `write` against a locked, buffered stdout and flushes it.
pub fn with_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write(&mut out)?;
    out.flush()
}

/// Opens the configured database, applying pending migrations when
/// `database.migrate_on_start` is set and refusing to go on with an outdated schema otherwise.
pub async fn open_database(settings: &Settings) -> anyhow::Result<crate::db::Db> {
    use anyhow::Context;
    let db = crate::db::Db::connect(&settings.database)?;
    if settings.database.migrate_on_start {
        db.migrate().await.with_context(|| {
            format!(
                "cannot prepare the database at {}",
                settings.database.url.redacted()
            )
        })?;
    } else if !db.is_migrated().await? {
        anyhow::bail!("the database has pending migrations; run `pincher db migrate` first");
    }
    Ok(db)
}

/// The shared context of a command. With `database`, the database is opened (and migrated
/// when `database.migrate_on_start` is set) first; without, it is only opened if used.
pub async fn context(settings: Settings, database: bool) -> anyhow::Result<crate::app::Context> {
    if database {
        let db = open_database(&settings).await?;
        Ok(crate::app::Context::with_db(settings, db)?)
    } else {
        Ok(crate::app::Context::new(settings)?)
    }
}

/// Renders `report`, writes it, names its failed parts on stderr and maps its completeness
/// to an outcome.
pub(crate) fn emit_report<R, S>(
    report: &crate::report::Report<R, S>,
    format: crate::render::ReportFormat,
    out: Option<&std::path::Path>,
    templates: &crate::render::Templates,
) -> anyhow::Result<Outcome>
where
    R: crate::report::Tabular + serde::Serialize,
    S: serde::Serialize + crate::report::Headline<R>,
{
    let mut text = crate::render::render_report(report, format, templates)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match out {
        Some(path) => crate::atomic_file::write_atomic(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => with_stdout(|out| out.write_all(text.as_bytes()))?,
    }
    for error in &report.errors {
        eprintln!("warning: {}", crate::render::describe_error(error));
    }
    use crate::report::Completeness;
    match report.completeness() {
        Completeness::Complete => Ok(Outcome::Success),
        Completeness::Partial => Ok(Outcome::Partial),
        Completeness::Failed => anyhow::bail!(
            "nothing could be read: all {} part(s) of the report failed",
            report.attempted
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_quoted_by_its_error_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("database unavailable: {0}")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::other("SQLx was built without TLS support");
        let err = anyhow::Error::new(Outer(inner)).context("cannot open the database");
        assert_eq!(
            error_text(&err),
            "cannot open the database: database unavailable: SQLx was built without TLS support"
        );
    }
}
