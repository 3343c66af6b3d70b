//! `pincher rules …`: list, show, delete, run and watch rules, see when they fire next, and
//! apply them declaratively from YAML or JSON files kept in git.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{Outcome, UsageError, rfc3339, with_stdout};
use crate::actions::Registered;
use crate::app::Context;
use crate::config::Settings;
use crate::db::rules as repo;
use crate::domain::rule::{Rule, RuleOutcome, RuleRun, RuleSpec, StepRun};
use crate::domain::service::ServiceKey;
use crate::render::{OutputFormat, write_fields, write_json, write_table};
use crate::scheduler;

/// `pincher rules …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: RulesCommand,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Every rule: name, schedule, time zone, enabled, steps.
    List,
    /// One rule, by name or id.
    Show {
        /// Name or id.
        rule: String,
    },
    /// Delete a rule (and its run history).
    Delete {
        /// Name or id.
        rule: String,
    },
    /// Run a rule now, here, and print each step's outcome.
    Run {
        /// Name or id.
        rule: String,
        /// Every step lists and checks, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A rule's runs, newest first.
    Runs {
        /// Name or id.
        rule: String,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Create or update rules from YAML or JSON files (a rule, or a list of rules, per file;
    /// every *.yaml, *.yml and *.json of a folder). The changes are shown first.
    Apply {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Show the changes and stop.
        #[arg(long)]
        dry_run: bool,
        /// Also delete the rules that no file names.
        #[arg(long)]
        prune: bool,
    },
    /// The coming fire times of every enabled rule (or of one), in its time zone.
    Next {
        /// Name or id.
        rule: Option<String>,
        /// How many fire times per rule.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

fn key(text: &str) -> anyhow::Result<ServiceKey> {
    ServiceKey::parse(text).map_err(|m| UsageError(format!("rule {text:?}: {m}")).into())
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let ctx = super::context(settings, true).await?;
    let output = opts.output;
    let outcome = match opts.command {
        RulesCommand::List => {
            let rules = repo::list_all(&ctx.db).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &rules),
                OutputFormat::Table => write_table(
                    out,
                    &[
                        "name",
                        "schedule",
                        "timezone",
                        "enabled",
                        "on failure",
                        "steps",
                    ],
                    rules
                        .iter()
                        .map(|r| {
                            vec![
                                r.name.clone(),
                                r.schedule.clone().unwrap_or_else(|| "(on demand)".into()),
                                r.timezone.clone(),
                                r.enabled.to_string(),
                                r.on_failure.as_str().to_owned(),
                                steps_summary(r),
                            ]
                        })
                        .collect(),
                ),
            })?;
            Outcome::Success
        }
        RulesCommand::Show { rule } => {
            let rule = repo::get(&ctx.db, &key(&rule)?).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &rule),
                OutputFormat::Table => write_fields(
                    out,
                    &[
                        ("name", rule.name.clone()),
                        ("id", rule.id.to_string()),
                        ("description", rule.description.clone()),
                        ("service", rule.service.clone().unwrap_or_default()),
                        ("schedule", rule.schedule.clone().unwrap_or_default()),
                        ("timezone", rule.timezone.clone()),
                        ("enabled", rule.enabled.to_string()),
                        ("on failure", rule.on_failure.as_str().to_owned()),
                        (
                            "steps",
                            serde_json::to_string(&rule.steps).unwrap_or_default(),
                        ),
                        ("updated", rfc3339(Some(rule.updated_at))),
                    ],
                ),
            })?;
            Outcome::Success
        }
        RulesCommand::Delete { rule } => {
            let found = repo::get(&ctx.db, &key(&rule)?).await?;
            if !repo::delete(&ctx.db, found.id, None).await? {
                anyhow::bail!("rule {} was deleted by someone else meanwhile", found.name);
            }
            with_stdout(|out| writeln!(out, "deleted rule {}", found.name))?;
            Outcome::Success
        }
        RulesCommand::Run { rule, dry_run } => run_now(&ctx, &rule, dry_run, output).await?,
        RulesCommand::Runs { rule, limit } => {
            let found = repo::get(&ctx.db, &key(&rule)?).await?;
            let (runs, _) = repo::runs_of(&ctx.db, found.id, limit.clamp(1, 500), None).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &runs),
                OutputFormat::Table => write_table(
                    out,
                    &[
                        "id",
                        "scheduled for",
                        "trigger",
                        "started",
                        "finished",
                        "outcome",
                        "steps",
                    ],
                    runs.iter().map(run_row).collect(),
                ),
            })?;
            Outcome::Success
        }
        RulesCommand::Apply {
            paths,
            dry_run,
            prune,
        } => apply(&ctx, &paths, dry_run, prune).await?,
        RulesCommand::Next { rule, count } => {
            let rules = match rule {
                Some(rule) => vec![repo::get(&ctx.db, &key(&rule)?).await?],
                None => repo::list_all(&ctx.db)
                    .await?
                    .into_iter()
                    .filter(|r| r.enabled)
                    .collect(),
            };
            let now = time::OffsetDateTime::now_utc();
            with_stdout(|out| {
                for rule in &rules {
                    let Some(schedule) = rule.parsed_schedule() else {
                        writeln!(out, "{}: runs on demand only", rule.name)?;
                        continue;
                    };
                    let disabled = if rule.enabled { "" } else { " (disabled)" };
                    writeln!(
                        out,
                        "{} ({}, {}){disabled}:",
                        rule.name,
                        rule.schedule.as_deref().unwrap_or_default(),
                        rule.timezone
                    )?;
                    let mut at = now;
                    for _ in 0..count {
                        let Some(next) = schedule.next_after(at) else {
                            break;
                        };
                        writeln!(out, "  {}", schedule.local(next))?;
                        at = next;
                    }
                }
                Ok(())
            })?;
            Outcome::Success
        }
    };
    ctx.db.close().await;
    Ok(outcome)
}

fn steps_summary(rule: &Rule) -> String {
    rule.steps
        .iter()
        .map(|s| s.action.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

fn step_summary(steps: &[StepRun]) -> String {
    steps
        .iter()
        .map(|s| format!("{}:{}", s.action, s.outcome))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_row(run: &RuleRun) -> Vec<String> {
    vec![
        run.id.to_string(),
        rfc3339(run.scheduled_for),
        run.trigger.as_str().to_owned(),
        rfc3339(run.started_at),
        rfc3339(run.finished_at),
        run.outcome.as_str().to_owned(),
        step_summary(&run.steps),
    ]
}

/// Runs a rule here and now, and maps its outcome to the exit code.
async fn run_now(
    ctx: &Context,
    rule: &str,
    dry_run: bool,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let rule = repo::get(&ctx.db, &key(rule)?).await?;
    let owner = scheduler::replica_name();
    let (_, done) = scheduler::start_now(ctx, rule, "cli", dry_run, &owner).await?;
    let run = done.await.context("the rule run stopped before it ended")?;
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, &run),
        OutputFormat::Table => write_table(
            out,
            &["step", "action", "action run", "outcome", "error"],
            run.steps
                .iter()
                .map(|s| {
                    vec![
                        (s.index + 1).to_string(),
                        s.action.clone(),
                        s.run_id.map(|id| id.to_string()).unwrap_or_default(),
                        s.outcome.clone(),
                        s.error.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
    })?;
    eprintln!(
        "{}rule {}: {} (run {})",
        if run.dry_run { "dry run: " } else { "" },
        run.rule,
        run.outcome.as_str(),
        run.id
    );
    Ok(match run.outcome {
        RuleOutcome::Ok => Outcome::Success,
        RuleOutcome::Partial => Outcome::Partial,
        _ => Outcome::Failure,
    })
}

/// Every rule document in `paths`, each with where it came from.
fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read the folder {}", path.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let value: Value = if file.extension().and_then(|e| e.to_str()) == Some("json") {
            serde_json::from_str(&text)
                .map_err(|e| UsageError(format!("{}: not valid JSON: {e}", file.display())))?
        } else {
            serde_yaml_ng::from_str(&text)
                .map_err(|e| UsageError(format!("{}: not valid YAML: {e}", file.display())))?
        };
        match value {
            Value::Array(rules) => {
                for (i, rule) in rules.into_iter().enumerate() {
                    documents.push((format!("{}[{i}]", file.display()), rule));
                }
            }
            rule => documents.push((file.display().to_string(), rule)),
        }
    }
    Ok(documents)
}

/// A change `apply` makes.
enum Change {
    Create(RuleSpec),
    Update(Box<Rule>, RuleSpec),
    Delete(Rule),
}

/// The fields of two rule documents that differ, as `field: old → new` lines.
fn differences(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    new.iter()
        .filter(|(field, value)| old.get(*field) != Some(*value))
        .map(|(field, value)| {
            format!(
                "{field}: {} → {value}",
                old.get(field).cloned().unwrap_or(Value::Null)
            )
        })
        .collect()
}

/// Brings the stored rules to what the files say: shows every change, then (unless a dry
/// run) makes them.
async fn apply(
    ctx: &Context,
    paths: &[PathBuf],
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<Outcome> {
    let mut specs: BTreeMap<String, RuleSpec> = BTreeMap::new();
    let mut errors = Vec::new();
    for (origin, document) in load(paths)? {
        match RuleSpec::from_json(&document, &Registered) {
            Ok(spec) => {
                let name = spec.name.to_string();
                if specs.insert(name.clone(), spec).is_some() {
                    errors.push(format!("{origin}: rule {name:?} is defined twice"));
                }
            }
            Err(e) => errors.extend(e.0.iter().map(|f| format!("{origin}: {f}"))),
        }
    }
    if !errors.is_empty() {
        return Err(UsageError(format!("nothing was applied:\n  {}", errors.join("\n  "))).into());
    }
    let stored: BTreeMap<String, Rule> = repo::list_all(&ctx.db)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for (name, spec) in specs.iter() {
        match stored.get(name) {
            None => changes.push(Change::Create(spec.clone())),
            Some(rule) if rule.spec_json() == spec.to_json() => unchanged += 1,
            Some(rule) => changes.push(Change::Update(Box::new(rule.clone()), spec.clone())),
        }
    }
    if prune {
        for (name, rule) in &stored {
            if !specs.contains_key(name) {
                changes.push(Change::Delete(rule.clone()));
            }
        }
    }
    with_stdout(|out| {
        for change in &changes {
            match change {
                Change::Create(spec) => writeln!(out, "+ create {}", spec.name)?,
                Change::Update(rule, spec) => {
                    writeln!(out, "~ update {}", rule.name)?;
                    for line in differences(&rule.spec_json(), &spec.to_json()) {
                        writeln!(out, "    {line}")?;
                    }
                }
                Change::Delete(rule) => writeln!(out, "- delete {}", rule.name)?,
            }
        }
        writeln!(
            out,
            "{} to create, {} to update, {} to delete, {unchanged} unchanged",
            changes
                .iter()
                .filter(|c| matches!(c, Change::Create(_)))
                .count(),
            changes
                .iter()
                .filter(|c| matches!(c, Change::Update(..)))
                .count(),
            changes
                .iter()
                .filter(|c| matches!(c, Change::Delete(_)))
                .count(),
        )
    })?;
    if dry_run {
        eprintln!("dry run: nothing was changed");
        return Ok(Outcome::Success);
    }
    for change in changes {
        match change {
            Change::Create(spec) => {
                repo::create(&ctx.db, &spec).await?;
            }
            Change::Update(rule, spec) => {
                repo::update(&ctx.db, &rule, &spec).await?;
            }
            Change::Delete(rule) => {
                repo::delete(&ctx.db, rule.id, Some(rule.revision)).await?;
            }
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_shown() {
        let old = serde_json::json!({"name": "a", "enabled": true, "schedule": "0 7 * * *"});
        let new = serde_json::json!({"name": "a", "enabled": false, "schedule": "0 7 * * *"});
        assert_eq!(differences(&old, &new), ["enabled: true → false"]);
    }
}
