//! `pincher chef …`: Chef server queries — the node list, one node's attributes, search over
//! every row, and a signed status check — as reports in every format.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Outcome, with_stdout};
use crate::actions::chef_reconcile::{ChefReconcile, ChefReconcileParams};
use crate::config::Settings;
use crate::plugins::chef::nodes::{get_node, list_nodes, node_attributes_report, node_report};
use crate::plugins::chef::search::{SearchQuery, SearchRow, parse_attribute, search};
use crate::plugins::chef::{ChefClient, ChefError};
use crate::render::{ReportFormat, Templates, render_report};
use crate::report::{Report, ReportError, Scope, Tabular};

/// `pincher chef …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: ChefCommand,
    /// Output format (default: table on a terminal, JSON otherwise).
    #[arg(long, global = true, value_enum)]
    output: Option<ReportFormat>,
}

#[derive(Debug, Subcommand)]
enum ChefCommand {
    /// Chef nodes.
    Nodes {
        #[command(subcommand)]
        command: NodesCommand,
    },
    /// Search an index (node, role, client, environment or a data bag) and print every row.
    Search {
        /// The index.
        index: String,
        /// The query, e.g. `role:web AND chef_environment:prod`.
        query: String,
        /// Return only this attribute (a partial search), as NAME=PATH with PATH dotted,
        /// e.g. `ip=network.interfaces.eth0` (repeatable).
        #[arg(long = "attribute", value_name = "NAME=PATH", value_parser = parse_attribute)]
        attributes: Vec<(String, Vec<String>)>,
    },
    /// Check that the server is reachable and accepts this client's signature.
    Status,
    /// Join Chef nodes (by `ec2.instance_id`) with the EC2 inventory: instances with no Chef
    /// node, and nodes whose instance is gone or stopped.
    Reconcile {
        /// Only nodes of this Chef environment.
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        targets: super::aws::TargetArgs,
        /// Write the report to this file (atomically) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum NodesCommand {
    /// List nodes with their platform, address, EC2 instance and last Chef run.
    List {
        /// Only nodes of this Chef environment.
        #[arg(long)]
        environment: Option<String>,
    },
    /// Show one node's attributes (merged as Chef merges them).
    Show {
        /// Node name.
        name: String,
        /// A dotted attribute path such as `ec2.instance_id` (repeatable; default: a
        /// standard set).
        #[arg(long = "attribute", value_name = "PATH")]
        attributes: Vec<String>,
    },
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let format = opts.output.unwrap_or_else(ReportFormat::for_stdout);
    let client = ChefClient::from_settings(&settings.chef)?;
    let server = client.server_url().to_string();
    match opts.command {
        ChefCommand::Reconcile {
            environment,
            targets,
            out,
        } => {
            let mut settings = settings;
            if let Some(profile) = targets.profile() {
                settings.aws.profile = Some(profile.to_owned());
            }
            let params = super::actions::checked(ChefReconcileParams {
                selection: targets.selection(),
                environment,
            })?;
            let ctx = super::context(settings, false).await?;
            let report = super::actions::read::<ChefReconcile>(&ctx, &params, "EC2").await?;
            return super::emit_report(&report, format, out.as_deref(), &ctx.templates);
        }
        ChefCommand::Nodes {
            command: NodesCommand::List { environment },
        } => {
            let nodes = list_nodes(&client, environment.as_deref())
                .await
                .context("cannot list Chef nodes")?;
            print_report(
                &node_report(&nodes, &server, environment.as_deref()),
                format,
            )?;
        }
        ChefCommand::Nodes {
            command: NodesCommand::Show { name, attributes },
        } => {
            let node = get_node(&client, &name)
                .await
                .with_context(|| format!("cannot read Chef node {name}"))?;
            print_report(&node_attributes_report(&node, &attributes, &server), format)?;
        }
        ChefCommand::Search {
            index,
            query,
            attributes,
        } => {
            let request = SearchQuery::new(&index, &query).with_attributes(attributes);
            let result = search(&client, &request)
                .await
                .with_context(|| format!("cannot search {index} for {query:?}"))?;
            let mut scope = Scope::default();
            scope.filters.insert("server".into(), server);
            scope.filters.insert("index".into(), index);
            scope.filters.insert("query".into(), query);
            let report = Report {
                kind: "chef.search".into(),
                title: "Chef search".into(),
                scope,
                generated_at: OffsetDateTime::now_utc(),
                summary: SearchSummary {
                    total: result.total,
                    rows: result.rows.len(),
                    pages: result.pages,
                },
                rows: result.rows,
                errors: Vec::new(),
                attempted: 1,
            };
            print_report(&report, format)?;
        }
        ChefCommand::Status => return status(&client, format).await,
    }
    Ok(Outcome::Success)
}

#[derive(Debug, Serialize)]
struct SearchSummary {
    total: u64,
    rows: usize,
    pages: usize,
}

impl crate::report::Headline<SearchRow> for SearchSummary {
    fn figures(&self, _rows: &[SearchRow]) -> Vec<crate::report::Figure> {
        vec![crate::report::Figure::new(
            "Matches on the server",
            crate::report::number(self.total as f64, 0),
        )]
    }
}

/// The outcome of `chef status`.
#[derive(Debug, Serialize)]
struct StatusRow {
    server: String,
    client: String,
    sign_version: &'static str,
    reachable: bool,
    authenticated: bool,
    latency_ms: Option<u128>,
    server_info: Option<String>,
}

impl Tabular for StatusRow {
    fn noun() -> &'static str {
        "servers"
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "server",
            "client",
            "sign_version",
            "reachable",
            "authenticated",
            "latency_ms",
            "server_info",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.server.clone(),
            self.client.clone(),
            self.sign_version.to_owned(),
            yes_no(self.reachable),
            yes_no(self.authenticated),
            self.latency_ms.map(|ms| ms.to_string()).unwrap_or_default(),
            self.server_info.clone().unwrap_or_default(),
        ]
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

async fn status(client: &ChefClient, format: ReportFormat) -> anyhow::Result<Outcome> {
    let checked = client.check().await;
    let mut row = StatusRow {
        server: client.server_url().to_string(),
        client: client.client_name().to_owned(),
        sign_version: client.sign_version().as_str(),
        reachable: true,
        authenticated: false,
        latency_ms: None,
        server_info: None,
    };
    let mut errors = Vec::new();
    match &checked {
        Ok(check) => {
            row.authenticated = true;
            row.latency_ms = Some(check.latency.max(Duration::from_millis(1)).as_millis());
            row.server_info.clone_from(&check.api_info);
        }
        Err(err) => {
            row.reachable = !matches!(err, ChefError::Unreachable { .. });
            errors.push(ReportError {
                account: None,
                region: None,
                group: Some(client.server_url().to_string()),
                reason: err.to_string(),
            });
        }
    }
    let report = Report {
        kind: "chef.status".into(),
        title: "Chef server status".into(),
        scope: Scope::default(),
        generated_at: OffsetDateTime::now_utc(),
        rows: vec![row],
        summary: serde_json::Value::Null,
        errors,
        attempted: 1,
    };
    print_report(&report, format)?;
    checked.context("the Chef server check failed")?;
    Ok(Outcome::Success)
}

fn print_report<R: Tabular + Serialize, S: Serialize + crate::report::Headline<R>>(
    report: &Report<R, S>,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let templates = Templates::new(None)?;
    let text = render_report(report, format, &templates)?;
    with_stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(())
}
