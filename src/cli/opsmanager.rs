//! `pincher opsmanager …`: back up Ops Manager automation configurations, and list, verify,
//! diff, prune and restore the backups.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::actions::{self, Consent, checked};
use super::{Outcome, open_database, with_stdout};
use crate::actions::Valid;
use crate::actions::opsmanager_backup::{BackupParams, OpsManagerBackup};
use crate::app::Context;
use crate::config::Settings;
use crate::plugins::opsmanager::backup::{PrunePolicy, VerifiedBackup};
use crate::plugins::opsmanager::diff::{self, Change};
use crate::plugins::opsmanager::{
    BackupLocation, BackupOutcome, BackupStore, GroupBackup, GroupId, OpsManagerError,
};
use crate::render::{OutputFormat, write_json, write_table};

/// `pincher opsmanager …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: OpsManagerCommand,
    /// Backup folder (overrides `backups.dir`, and uses the folder even when
    /// `backups.s3_bucket` is set).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum OpsManagerCommand {
    /// Back up the automation configuration of each group as {group}/{version}-{md5}.json in
    /// the backup folder or S3 bucket.
    Backup {
        /// Group (project) id to back up (repeatable; default: opsmanager.group_ids).
        #[arg(long = "group", value_name = "ID")]
        groups: Vec<String>,
        /// Back up every group the API key can see.
        #[arg(long, conflicts_with = "groups")]
        all_groups: bool,
        /// List the groups that would be backed up; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print only failures (to stderr), for cron.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Work with stored backups.
    Backups {
        #[command(subcommand)]
        command: BackupsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BackupsCommand {
    /// List backups: group, version, md5, size and time, newest first.
    List {
        /// Only this group's backups.
        #[arg(long, value_name = "ID")]
        group: Option<String>,
    },
    /// Recompute every backup's MD5; exits 1 on any mismatch.
    Verify {
        /// Only this group's backups.
        #[arg(long, value_name = "ID")]
        group: Option<String>,
    },
    /// Structural diff of two backup files (or any two JSON files); secrets are masked.
    Diff {
        /// The old document: a file, or a backup in S3 as s3://BUCKET/KEY (MD5 checked).
        a: PathBuf,
        /// The new document: a file, or a backup in S3 as s3://BUCKET/KEY (MD5 checked).
        b: PathBuf,
    },
    /// Delete old backups; the newest backup of each group is always kept.
    Prune {
        /// Keep the N newest backups of each group.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
              required_unless_present = "keep_days", conflicts_with = "keep_days")]
        keep: Option<u32>,
        /// Keep backups written in the last D days.
        #[arg(long, value_name = "D")]
        keep_days: Option<u32>,
        /// Only this group's backups.
        #[arg(long, value_name = "ID")]
        group: Option<String>,
    },
    /// Replace a group's live automation configuration with a backup, whole.
    Restore {
        /// The backup ({version}-{md5}.json): a file, or s3://BUCKET/KEY.
        file: PathBuf,
        /// The group (project) to restore into.
        #[arg(long, value_name = "ID")]
        group: String,
        /// Show the diff against the live configuration and stop.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (required when there is no terminal).
        #[arg(long)]
        yes: bool,
        /// Restore a file whose content pincher has no record of backing up (one copied in
        /// by hand, or from another installation). Without it such a file is refused: a file
        /// planted in the backup folder or bucket is never pushed to every MongoDB host.
        #[arg(long)]
        trust_file: bool,
    },
}

/// Runs the command.
pub async fn run(opts: Opts, mut settings: Settings) -> anyhow::Result<Outcome> {
    if let Some(dir) = &opts.dir {
        settings.backups.dir = dir.clone();
        settings.backups.s3_bucket = None;
    }
    let output = opts.output;
    match opts.command {
        OpsManagerCommand::Backup {
            groups,
            all_groups,
            dry_run,
            quiet,
        } => {
            let params = checked(BackupParams { groups, all_groups })?;
            run_backup(settings, &params, dry_run, quiet, output).await
        }
        OpsManagerCommand::Backups { command } => {
            let ctx = Context::new(settings)?;
            let store = ctx.backup_store().await;
            match command {
                BackupsCommand::List { group } => list(store, group.as_deref(), output).await,
                BackupsCommand::Verify { group } => verify(store, group.as_deref(), output).await,
                BackupsCommand::Diff { a, b } => show_diff(&ctx, &a, &b, output).await,
                BackupsCommand::Prune {
                    keep,
                    keep_days,
                    group,
                } => {
                    let policy = match (keep, keep_days) {
                        (Some(n), _) => PrunePolicy::KeepLast(n as usize),
                        (None, Some(d)) => PrunePolicy::KeepDays(d),
                        (None, None) => anyhow::bail!("give --keep N or --keep-days D"),
                    };
                    prune(store, group.as_deref(), policy, output).await
                }
                BackupsCommand::Restore {
                    file,
                    group,
                    dry_run,
                    yes,
                    trust_file,
                } => restore(&ctx, &file, &group, dry_run, yes, trust_file).await,
            }
        }
    }
}

/// Whether the backup runs record pincher writing a backup with this MD5.
async fn recorded_backup(ctx: &Context, md5: &str) -> anyhow::Result<bool> {
    let db = open_database(&ctx.settings).await.context(
        "cannot check the backup against the record of backup runs (--trust-file skips this check)",
    )?;
    let recorded = crate::db::backups::recorded(&db, md5)
        .await
        .context("cannot check the backup against the record of backup runs")?;
    db.close().await;
    Ok(recorded)
}

fn parse_group(id: Option<&str>) -> anyhow::Result<Option<GroupId>> {
    Ok(id.map(GroupId::parse).transpose()?)
}

/// Runs `opsmanager.backup`. The backups are written even when the database is down (the
/// run then cannot be recorded, which is a warning and exit 3).
async fn run_backup(
    settings: Settings,
    params: &Valid<BackupParams>,
    dry_run: bool,
    quiet: bool,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let ctx = match open_database(&settings).await {
        Ok(db) => Context::with_db(settings, db)?,
        Err(e) => {
            tracing::debug!(error = %e, "the database cannot be opened; backing up anyway");
            Context::new(settings)?
        }
    };
    let consent = Consent { dry_run, yes: true };
    let (outcome, run, mut exit) =
        actions::change::<OpsManagerBackup>(&ctx, params, consent, "Ops Manager").await?;
    match output {
        OutputFormat::Json => with_stdout(|out| write_json(out, &outcome))?,
        OutputFormat::Table if quiet => {
            for r in outcome
                .results
                .iter()
                .filter(|r| r.outcome == BackupOutcome::Failed)
            {
                eprintln!("{}", describe(r));
            }
        }
        OutputFormat::Table => with_stdout(|out| {
            for group in &outcome.planned {
                writeln!(out, "would back up {group}")?;
            }
            for r in &outcome.results {
                writeln!(out, "{}", describe(r))?;
            }
            Ok(())
        })?,
    }
    if !matches!(output, OutputFormat::Json) {
        for e in &outcome.errors {
            eprintln!("{:?}: not backed up: {}", e.group, e.error);
        }
    }
    if let Some(e) = outcome.record_error.as_ref().filter(|_| run.is_some()) {
        eprintln!("warning: the groups' results could not be recorded in the database: {e}");
        if exit == Outcome::Success {
            exit = Outcome::Partial;
        }
    }
    if exit == Outcome::Failure {
        let first = outcome
            .results
            .iter()
            .find_map(|r| r.error.clone())
            .or_else(|| outcome.errors.first().map(|e| e.error.clone()))
            .unwrap_or_default();
        anyhow::bail!(
            "no group could be backed up ({} failed); first failure: {first}",
            outcome.summary.failed
        );
    }
    Ok(exit)
}

fn describe(r: &GroupBackup) -> String {
    let version = r.version.map(|v| v.to_string()).unwrap_or_default();
    match r.outcome {
        BackupOutcome::Stored => format!(
            "stored     {} version {version} -> {} ({} bytes)",
            r.group_id,
            r.path.as_deref().unwrap_or_default(),
            r.bytes.unwrap_or_default()
        ),
        BackupOutcome::Unchanged => {
            format!("unchanged  {} version {version}", r.group_id)
        }
        BackupOutcome::Failed => format!(
            "failed     {}: {}",
            r.group_id,
            r.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn list(
    store: &BackupStore,
    group: Option<&str>,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let entries = store.list(parse_group(group)?.as_ref()).await?;
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, &entries),
        OutputFormat::Table => write_table(
            out,
            &["group", "version", "md5", "bytes", "written"],
            entries
                .iter()
                .map(|e| {
                    vec![
                        e.group_id.to_string(),
                        e.version.to_string(),
                        e.md5.clone(),
                        e.bytes.to_string(),
                        rfc3339(e.modified),
                    ]
                })
                .collect(),
        ),
    })?;
    Ok(Outcome::Success)
}

async fn verify(
    store: &BackupStore,
    group: Option<&str>,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let results = store.verify(parse_group(group)?.as_ref()).await?;
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, &results),
        OutputFormat::Table => {
            for r in &results {
                let state = match (&r.error, r.ok) {
                    (Some(e), _) => format!("UNREADABLE ({e})"),
                    (None, true) => "ok".to_owned(),
                    (None, false) => format!(
                        "MISMATCH (content md5 {})",
                        r.actual_md5.as_deref().unwrap_or_default()
                    ),
                };
                writeln!(out, "{}  {state}", r.entry.path)?;
            }
            Ok(())
        }
    })?;
    let bad = results.iter().filter(|r| !r.ok).count();
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} backup(s) do not match their MD5",
            results.len()
        );
    }
    Ok(Outcome::Success)
}

/// A local file as any JSON document; an S3 object as a backup whose MD5 matches its name.
async fn read_json(ctx: &Context, arg: &Path) -> anyhow::Result<Value> {
    let location = BackupLocation::parse(arg)?;
    let bytes = match &location {
        BackupLocation::File(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        BackupLocation::S3 { .. } => read_verified(ctx, &location).await?.config.bytes,
    };
    serde_json::from_slice(&bytes).with_context(|| format!("{location} is not valid JSON"))
}

fn write_changes(
    out: &mut dyn Write,
    changes: &[Change],
    output: OutputFormat,
) -> std::io::Result<()> {
    match output {
        OutputFormat::Json => write_json(out, &changes),
        OutputFormat::Table => {
            if changes.is_empty() {
                writeln!(out, "no differences")?;
            }
            for change in changes {
                writeln!(out, "{change}")?;
            }
            Ok(())
        }
    }
}

/// A backup read back and checked against its name, from a file or S3.
async fn read_verified(
    ctx: &Context,
    location: &BackupLocation,
) -> Result<VerifiedBackup, OpsManagerError> {
    let s3 = match location {
        BackupLocation::S3 { .. } => Some(ctx.s3().await),
        BackupLocation::File(_) => None,
    };
    ctx.backup_store()
        .await
        .read_verified(location, s3.as_ref())
        .await
}

async fn show_diff(
    ctx: &Context,
    a: &Path,
    b: &Path,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let changes = diff::diff(&read_json(ctx, a).await?, &read_json(ctx, b).await?);
    with_stdout(|out| write_changes(out, &changes, output))?;
    Ok(Outcome::Success)
}

async fn prune(
    store: &BackupStore,
    group: Option<&str>,
    policy: PrunePolicy,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let deleted = store
        .prune(
            parse_group(group)?.as_ref(),
            policy,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, &deleted),
        OutputFormat::Table => {
            for e in &deleted {
                writeln!(out, "deleted {}", e.path)?;
            }
            writeln!(out, "deleted {} backup(s)", deleted.len())
        }
    })?;
    Ok(Outcome::Success)
}

async fn restore(
    ctx: &Context,
    file: &Path,
    group: &str,
    dry_run: bool,
    yes: bool,
    trust_file: bool,
) -> anyhow::Result<Outcome> {
    let group = GroupId::parse(group)?;
    let file = BackupLocation::parse(file)?;
    let backup = read_verified(ctx, &file)
        .await
        .with_context(|| format!("refusing to restore {file}"))?;
    if !trust_file && !recorded_backup(ctx, &backup.md5).await? {
        anyhow::bail!(
            "refusing to restore {file}: pincher has no record of writing a backup with md5 {} \
             (backup_runs); if you trust this file, run restore again with --trust-file",
            backup.md5
        );
    }
    if let Some(from) = backup.group_id.as_ref().filter(|g| **g != group) {
        eprintln!("note: {file} was backed up from group {from}, restoring into {group}");
    }
    let client = ctx.opsmanager().await?;
    let live = client
        .automation_config(&group)
        .await
        .with_context(|| format!("cannot read the live configuration of group {group}"))?;
    let backup_doc: Value = serde_json::from_slice(&backup.config.bytes)
        .with_context(|| format!("{file} is not valid JSON"))?;
    let live_doc: Value =
        serde_json::from_slice(&live.bytes).context("the live configuration is not valid JSON")?;
    let changes = diff::diff(&live_doc, &backup_doc);
    with_stdout(|out| {
        writeln!(
            out,
            "restore {} (version {}, md5 {}) into group {group}, live version {}:",
            file, backup.config.version, backup.md5, live.version
        )?;
        write_changes(out, &changes, OutputFormat::Table)
    })?;
    if dry_run {
        with_stdout(|out| writeln!(out, "dry run: nothing was changed"))?;
        return Ok(Outcome::Success);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to replace the automation configuration of group {group} without \
                 --yes: there is no terminal to ask on"
            );
        }
        eprint!("Replace the live automation configuration of group {group}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            anyhow::bail!("restore cancelled; nothing was changed");
        }
    }
    let current = client
        .automation_config(&group)
        .await
        .with_context(|| format!("cannot re-read the live configuration of group {group}"))?;
    if current.version != live.version {
        anyhow::bail!(
            "refusing to restore: the live configuration of group {group} moved from version {} \
             to {} since the diff was shown; run restore again to review the new diff",
            live.version,
            current.version
        );
    }
    client
        .put_automation_config(&group, &backup.config.bytes)
        .await
        .with_context(|| format!("cannot replace the automation configuration of group {group}"))?;
    let after = client
        .automation_config(&group)
        .await
        .with_context(|| format!("the restore was sent but group {group} could not be re-read"))?;
    with_stdout(|out| {
        writeln!(
            out,
            "restored group {group} from version {}: live version is now {}",
            backup.config.version, after.version
        )
    })?;
    Ok(Outcome::Success)
}
