//! `pincher services …`: the service registry from the command line, through the same
//! repository as the HTTP API.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::actions::{checked, read};
use super::{Outcome, open_database, with_stdout};
use crate::actions::Valid;
use crate::actions::params::parse_date;
use crate::actions::service_report::{ServiceReport, ServiceReportParams};
use crate::config::Settings;
use crate::db::services as repo;
use crate::domain::service::{Service, ServiceFilter, ServiceKey, ServiceSpec};
use crate::render::{OutputFormat, write_fields, write_json, write_table};
use crate::report::Completeness;

/// `pincher services …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: ServicesCommand,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum ServicesCommand {
    /// List services in name order.
    List {
        /// Only services of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only services with this tag (repeatable; all must match).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        /// Only services whose name starts with this.
        #[arg(long = "name-prefix", value_name = "PREFIX")]
        prefix: Option<String>,
        /// At most this many services (default: all).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one service, by id or name.
    Show {
        /// Id or name.
        service: String,
    },
    /// Register a service, from flags or a JSON document.
    Create {
        #[command(flatten)]
        fields: FieldArgs,
        /// A JSON document with the service (`-` for stdin); flags override its fields.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Change a service: flags set fields; `--patch` applies a JSON merge patch.
    Update {
        /// Id or name.
        service: String,
        #[command(flatten)]
        fields: FieldArgs,
        /// Remove this tag (repeatable).
        #[arg(long = "remove-tag", value_name = "KEY")]
        remove_tags: Vec<String>,
        /// A JSON merge patch (RFC 7396) to apply (`-` for stdin).
        #[arg(long, value_name = "FILE")]
        patch: Option<PathBuf>,
    },
    /// Delete a service.
    Delete {
        /// Id or name.
        service: String,
    },
    /// A service's EC2 and RDS resources (found by its tags) and its cost (services.report).
    Report {
        /// Id or name.
        service: String,
        /// First day of the cost period (YYYY-MM-DD); default: the first day of last month.
        #[arg(long, value_parser = parse_date)]
        start: Option<time::Date>,
        /// First day not included (YYYY-MM-DD); default: today.
        #[arg(long, value_parser = parse_date)]
        end: Option<time::Date>,
        #[command(flatten)]
        targets: super::aws::TargetArgs,
    },
}

#[derive(Debug, Args)]
struct FieldArgs {
    /// Unique name: lowercase letters, digits and '-', at most 63 characters.
    #[arg(long)]
    name: Option<String>,
    /// Owning team.
    #[arg(long)]
    owner: Option<String>,
    /// Human-friendly name.
    #[arg(long)]
    display_name: Option<String>,
    /// What the service does.
    #[arg(long)]
    description: Option<String>,
    /// Cost-allocation tag (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_pair)]
    tags: Vec<(String, String)>,
    /// Named link such as repo=https://… (repeatable).
    #[arg(long = "link", value_name = "NAME=URL", value_parser = parse_pair)]
    links: Vec<(String, String)>,
    /// Metadata as a JSON object (merged into the existing metadata on update).
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
}

impl FieldArgs {
    /// The flags as a merge patch.
    fn to_patch(&self) -> anyhow::Result<Map<String, Value>> {
        let mut patch = Map::new();
        for (key, value) in [
            ("name", &self.name),
            ("owner", &self.owner),
            ("display_name", &self.display_name),
            ("description", &self.description),
        ] {
            if let Some(value) = value {
                patch.insert(key.into(), json!(value));
            }
        }
        if !self.tags.is_empty() {
            patch.insert("tags".into(), pairs_object(&self.tags));
        }
        if !self.links.is_empty() {
            patch.insert("links".into(), pairs_object(&self.links));
        }
        if let Some(metadata) = &self.metadata {
            let value: Value =
                serde_json::from_str(metadata).context("--metadata is not valid JSON")?;
            patch.insert("metadata".into(), value);
        }
        Ok(patch)
    }
}

fn pairs_object(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn read_json(path: &PathBuf) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn parse_key(s: &str) -> anyhow::Result<ServiceKey> {
    ServiceKey::parse(s)
        .map_err(|m| anyhow::anyhow!("{s:?} is neither a service id nor a name: {m}"))
}

/// Runs the command.
pub async fn run(opts: Opts, mut settings: Settings) -> anyhow::Result<Outcome> {
    let output = opts.output;
    if let ServicesCommand::Report {
        service,
        start,
        end,
        targets,
    } = opts.command
    {
        if let Some(profile) = targets.profile() {
            settings.aws.profile = Some(profile.to_owned());
        }
        let params = checked(ServiceReportParams {
            service,
            selection: targets.selection(),
            start,
            end,
        })?;
        return report(settings, &params, output).await;
    }
    let db = open_database(&settings).await?;
    match opts.command {
        ServicesCommand::Report { .. } => unreachable!("handled above"),
        ServicesCommand::List {
            owner,
            tags,
            prefix,
            limit,
        } => {
            let filter = ServiceFilter {
                owner,
                tags,
                name_prefix: prefix,
            };
            filter
                .check()
                .map_err(|e| super::UsageError(format!("--tag: {}", e.message)))?;
            let mut services = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let want = limit.map_or(500, |l| {
                    (l as usize).saturating_sub(services.len()).min(500) as u32
                });
                if want == 0 {
                    break;
                }
                let page = repo::list(&db, &filter, want, after.as_deref()).await?;
                services.extend(page.items);
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &services),
                OutputFormat::Table => write_table(
                    out,
                    &["name", "owner", "tags", "updated"],
                    services
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.owner.clone(),
                                format_pairs(&s.tags),
                                rfc3339(s),
                            ]
                        })
                        .collect(),
                ),
            })?;
        }
        ServicesCommand::Show { service } => {
            let service = repo::get(&db, &parse_key(&service)?).await?;
            print_service(output, &service)?;
        }
        ServicesCommand::Create { fields, file } => {
            let mut doc = match &file {
                Some(path) => read_json(path)?,
                None => Value::Object(Map::new()),
            };
            if let Value::Object(obj) = &mut doc {
                obj.extend(fields.to_patch()?);
            }
            let spec = ServiceSpec::from_json(&doc)?;
            let service = repo::create(&db, &spec).await?;
            print_service(output, &service)?;
        }
        ServicesCommand::Update {
            service,
            fields,
            remove_tags,
            patch,
        } => {
            let current = repo::get(&db, &parse_key(&service)?).await?;
            let mut merged = match &patch {
                Some(path) => read_json(path)?,
                None => Value::Object(Map::new()),
            };
            let Value::Object(obj) = &mut merged else {
                anyhow::bail!("the merge patch must be a JSON object");
            };
            let mut flags = fields.to_patch()?;
            // Tags given as flags add to (not replace) the current tags, as links do.
            for key in ["tags", "links", "metadata"] {
                if let Some(Value::Object(new)) = flags.remove(key) {
                    let entry = obj.entry(key).or_insert_with(|| json!({}));
                    if let Value::Object(existing) = entry {
                        existing.extend(new);
                    }
                }
            }
            obj.extend(flags);
            if !remove_tags.is_empty() {
                let entry = obj.entry("tags").or_insert_with(|| json!({}));
                if let Value::Object(tags) = entry {
                    for key in remove_tags {
                        tags.insert(key, Value::Null);
                    }
                }
            }
            let spec = ServiceSpec::merge_patch(&current, &merged)?;
            let updated = repo::update(&db, current.id, current.revision, &spec).await?;
            print_service(output, &updated)?;
        }
        ServicesCommand::Delete { service } => {
            let current = repo::get(&db, &parse_key(&service)?).await?;
            if !repo::delete(&db, current.id, Some(current.revision)).await? {
                anyhow::bail!(
                    "service {} changed while deleting it; try again",
                    current.name
                );
            }
            with_stdout(|out| writeln!(out, "deleted service {} ({})", current.name, current.id))?;
        }
    }
    db.close().await;
    Ok(Outcome::Success)
}

/// Runs `services.report` and prints it: JSON as `GET /services/{key}/report` answers, or a
/// summary table.
async fn report(
    settings: Settings,
    params: &Valid<ServiceReportParams>,
    output: OutputFormat,
) -> anyhow::Result<Outcome> {
    let ctx = super::context(settings, true).await?;
    let outcome = read::<ServiceReport>(&ctx, params, "Service").await?;
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, &outcome),
        OutputFormat::Table => write_table(
            out,
            &["part", "rows", "completeness", "errors"],
            [
                (
                    "ec2",
                    outcome.ec2.rows.len(),
                    outcome.ec2.completeness(),
                    &outcome.ec2.errors,
                ),
                (
                    "rds",
                    outcome.rds.rows.len(),
                    outcome.rds.completeness(),
                    &outcome.rds.errors,
                ),
                (
                    "ebs",
                    outcome.ebs.rows.len(),
                    outcome.ebs.completeness(),
                    &outcome.ebs.errors,
                ),
                (
                    "lambda",
                    outcome.lambda.rows.len(),
                    outcome.lambda.completeness(),
                    &outcome.lambda.errors,
                ),
                (
                    "savings",
                    outcome.savings.rows.len(),
                    outcome.savings.completeness(),
                    &outcome.savings.errors,
                ),
                (
                    "cost",
                    outcome.cost.rows.len(),
                    outcome.cost.completeness(),
                    &outcome.cost.errors,
                ),
            ]
            .into_iter()
            .map(|(part, rows, completeness, errors)| {
                vec![
                    part.to_owned(),
                    rows.to_string(),
                    serde_json::to_value(completeness)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    errors
                        .iter()
                        .map(crate::render::describe_error)
                        .collect::<Vec<_>>()
                        .join("; "),
                ]
            })
            .collect(),
        ),
    })?;
    Ok(match outcome.completeness() {
        Completeness::Complete => Outcome::Success,
        Completeness::Partial => Outcome::Partial,
        Completeness::Failed => Outcome::Failure,
    })
}

fn rfc3339(service: &Service) -> String {
    service
        .updated_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn format_pairs(map: &std::collections::BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_service(output: OutputFormat, service: &Service) -> anyhow::Result<()> {
    with_stdout(|out| match output {
        OutputFormat::Json => write_json(out, service),
        OutputFormat::Table => write_fields(
            out,
            &[
                ("id", service.id.to_string()),
                ("name", service.name.clone()),
                (
                    "display name",
                    service.display_name.clone().unwrap_or_default(),
                ),
                ("owner", service.owner.clone()),
                ("description", service.description.clone()),
                ("tags", format_pairs(&service.tags)),
                ("links", format_pairs(&service.links)),
                (
                    "metadata",
                    Value::Object(service.metadata.clone()).to_string(),
                ),
                (
                    "created",
                    service
                        .created_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                ),
                ("updated", rfc3339(service)),
            ],
        ),
    })?;
    Ok(())
}
