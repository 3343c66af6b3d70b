//! `pincher aws …`: AWS inventory and cost reports, rendered to the terminal or a file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Outcome, emit_report, open_database};
use crate::config::Settings;
use crate::db::services as repo;
use crate::domain::service::{Service, ServiceFilter, ServiceKey};
use crate::plugins::Progress;
use crate::plugins::aws::ce;
use crate::plugins::aws::ec2::{self, Ec2Query};
use crate::plugins::aws::lambdas::{self, LambdaQuery};
use crate::plugins::aws::organizations;
use crate::plugins::aws::rds::{self, RdsQuery};
use crate::plugins::aws::{AccountSelection, Aws, RegionSelection, ServiceMatcher, Targets};
use crate::render::{Extras, ReportFormat, chart};
use crate::report::Period;

/// `pincher aws …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(flatten)]
    targets: TargetArgs,
    #[command(subcommand)]
    command: AwsCommand,
}

/// Where to read: profile, accounts and regions.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Named profile from the shared AWS config files (overrides `aws.profile`).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Read this region only.
    #[arg(long, global = true, conflicts_with_all = ["regions", "all_regions"])]
    region: Option<String>,
    /// Read these regions (comma-separated).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        conflicts_with = "all_regions"
    )]
    regions: Vec<String>,
    /// Read every region enabled in each account.
    #[arg(long, global = true)]
    all_regions: bool,
    /// Read these accounts (comma-separated ids), assuming `aws.assume_role_name` in each.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        conflicts_with = "all_accounts"
    )]
    accounts: Vec<String>,
    /// Read every active account of the organization.
    #[arg(long, global = true)]
    all_accounts: bool,
}

impl TargetArgs {
    /// The profile given with `--profile`.
    pub(crate) fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// The accounts and regions selected.
    pub(crate) fn targets(&self) -> Targets {
        let accounts = if self.all_accounts {
            AccountSelection::All
        } else if self.accounts.is_empty() {
            AccountSelection::Current
        } else {
            AccountSelection::Listed(self.accounts.clone())
        };
        let regions = if self.all_regions {
            RegionSelection::AllEnabled
        } else if let Some(region) = &self.region {
            RegionSelection::Listed(vec![region.clone()])
        } else if self.regions.is_empty() {
            RegionSelection::Home
        } else {
            RegionSelection::Listed(self.regions.clone())
        };
        Targets { accounts, regions }
    }
}

#[derive(Debug, Subcommand)]
enum AwsCommand {
    /// EC2 instances.
    Ec2 {
        #[command(subcommand)]
        command: Ec2Command,
    },
    /// RDS DB instances.
    Rds {
        #[command(subcommand)]
        command: RdsCommand,
    },
    /// Lambda functions.
    Lambda {
        #[command(subcommand)]
        command: LambdaCommand,
    },
    /// Cost Explorer.
    Ce {
        #[command(subcommand)]
        command: CeCommand,
    },
    /// Accounts of the organization.
    Organizations {
        #[command(subcommand)]
        command: OrganizationsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum Ec2Command {
    /// Instances of the selected accounts and regions, with their registered services.
    Report(Ec2Args),
}

#[derive(Debug, Subcommand)]
enum RdsCommand {
    /// DB instances of the selected accounts and regions, with their registered services.
    Report(RdsArgs),
}

#[derive(Debug, Subcommand)]
enum LambdaCommand {
    /// Functions of the selected accounts and regions, deprecated runtimes flagged.
    Report(LambdaArgs),
}

#[derive(Debug, Subcommand)]
enum CeCommand {
    /// Cost for a period by time and group, with the change against the previous period.
    Report(CeArgs),
}

#[derive(Debug, Args)]
struct CeArgs {
    /// First day (YYYY-MM-DD); default: the first day of last month.
    #[arg(long, value_parser = parse_date)]
    start: Option<time::Date>,
    /// First day not included (YYYY-MM-DD); default: today (month to date).
    #[arg(long, value_parser = parse_date)]
    end: Option<time::Date>,
    /// Time buckets: daily or monthly.
    #[arg(long, default_value = "monthly")]
    granularity: String,
    /// Cost metric: UnblendedCost, AmortizedCost, NetUnblendedCost, BlendedCost, …
    #[arg(long, default_value = "UnblendedCost")]
    metric: String,
    /// Group by service, account, region, tag:KEY or registered-service.
    #[arg(long, value_name = "GROUP")]
    group_by: Option<String>,
    /// Also forecast the rest of the current month (GetCostForecast).
    #[arg(long)]
    forecast: bool,
    #[command(flatten)]
    output: OutputArgs,
}

fn parse_date(s: &str) -> Result<time::Date, String> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("expected YYYY-MM-DD: {e}"))
}

#[derive(Debug, Subcommand)]
enum OrganizationsCommand {
    /// Accounts with their organizational-unit path.
    Report(OrganizationsArgs),
}

#[derive(Debug, Args)]
struct RdsArgs {
    /// Only instances of this engine (repeatable), e.g. postgres.
    #[arg(long = "engine", value_name = "ENGINE")]
    engines: Vec<String>,
    /// Only instances with this tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = crate::plugins::aws::parse_tag)]
    tags: Vec<(String, String)>,
    /// Only instances of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct LambdaArgs {
    /// Only functions on this runtime (repeatable), e.g. python3.12.
    #[arg(long = "runtime", value_name = "RUNTIME")]
    runtimes: Vec<String>,
    /// Only functions on runtimes past their AWS deprecation date.
    #[arg(long)]
    deprecated: bool,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct OrganizationsArgs {
    #[command(flatten)]
    output: OutputArgs,
}

/// Where and how a report is written.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format (default: from the `--out` extension, else table on a terminal and
    /// JSON otherwise).
    #[arg(long, value_enum)]
    output: Option<ReportFormat>,
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl OutputArgs {
    /// Renders `report` as asked and writes it out.
    fn emit<R, S>(
        &self,
        report: &crate::report::Report<R, S>,
        settings: &Settings,
        extras: &Extras,
    ) -> anyhow::Result<Outcome>
    where
        R: crate::report::Tabular + serde::Serialize,
        S: serde::Serialize,
    {
        emit_report(report, self.format(), self.out.as_deref(), settings, extras)
    }

    fn format(&self) -> ReportFormat {
        if let Some(format) = self.output {
            return format;
        }
        let by_extension = self
            .out
            .as_deref()
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
            .and_then(|e| match e {
                "json" => Some(ReportFormat::Json),
                "csv" => Some(ReportFormat::Csv),
                "md" | "markdown" => Some(ReportFormat::Markdown),
                "html" | "htm" => Some(ReportFormat::Html),
                "txt" => Some(ReportFormat::Table),
                _ => None,
            });
        match (by_extension, &self.out) {
            (Some(format), _) => format,
            (None, Some(_)) => ReportFormat::Json,
            (None, None) => ReportFormat::for_stdout(),
        }
    }
}

#[derive(Debug, Args)]
struct Ec2Args {
    /// Only instances in this state (repeatable): pending, running, stopped, …
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Only instances with this tag (repeatable; values of one key are alternatives).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = crate::plugins::aws::parse_tag)]
    tags: Vec<(String, String)>,
    /// Only instances of this type (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only instances of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Include every tag of every instance.
    #[arg(long = "tags")]
    include_tags: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let targets = opts.targets.targets();
    let aws = Aws::load(&settings.aws, opts.targets.profile.as_deref()).await;
    match opts.command {
        AwsCommand::Ec2 {
            command: Ec2Command::Report(args),
        } => {
            let db = open_database(&settings).await?;
            let services = repo::list_all(&db, &ServiceFilter::default())
                .await
                .context("cannot read the registered services")?;
            let service = match &args.service {
                Some(name) => {
                    let key = ServiceKey::parse(name)
                        .map_err(|m| anyhow::anyhow!("--service {name:?}: {m}"))?;
                    let service = repo::get(&db, &key).await?;
                    Some((service.name, service.tags))
                }
                None => None,
            };
            db.close().await;
            let query = Ec2Query {
                targets,
                states: args.states,
                tags: args.tags,
                types: args.types,
                service,
                include_tags: args.include_tags,
            };
            let progress = progress_bar("EC2");
            let report = ec2::instance_report(
                &aws,
                &query,
                &ServiceMatcher::new(&services),
                progress.as_ref(),
            )
            .await
            .context("cannot build the EC2 report")?;
            args.output.emit(&report, &settings, &Extras::default())
        }
        AwsCommand::Rds {
            command: RdsCommand::Report(args),
        } => {
            let services = registered_services(&settings).await?;
            let query = RdsQuery {
                targets,
                engines: args.engines,
                tags: args.tags,
                service: args.service,
            };
            let progress = progress_bar("RDS");
            let report = rds::instance_report(
                &aws,
                &query,
                &ServiceMatcher::new(&services),
                progress.as_ref(),
            )
            .await
            .context("cannot build the RDS report")?;
            args.output.emit(&report, &settings, &Extras::default())
        }
        AwsCommand::Lambda {
            command: LambdaCommand::Report(args),
        } => {
            let query = LambdaQuery {
                targets,
                runtimes: args.runtimes,
                deprecated_only: args.deprecated,
            };
            let progress = progress_bar("Lambda");
            let report = lambdas::function_report(&aws, &query, progress.as_ref())
                .await
                .context("cannot build the Lambda report")?;
            args.output.emit(&report, &settings, &Extras::default())
        }
        AwsCommand::Ce {
            command: CeCommand::Report(args),
        } => {
            let defaults = ce::default_period(time::OffsetDateTime::now_utc().date());
            let group_by = args
                .group_by
                .as_deref()
                .map(ce::GroupBy::parse)
                .transpose()?;
            let services = if group_by == Some(ce::GroupBy::RegisteredService) {
                registered_services(&settings)
                    .await?
                    .into_iter()
                    .filter(|s| !s.tags.is_empty())
                    .map(|s| (s.name, s.tags))
                    .collect()
            } else {
                Vec::new()
            };
            let query = ce::CeQuery {
                period: Period {
                    start: args.start.unwrap_or(defaults.start),
                    end: args.end.unwrap_or(defaults.end),
                },
                granularity: ce::Granularity::parse(&args.granularity)?,
                metric: args.metric,
                group_by,
                forecast: args.forecast,
            };
            let progress = progress_bar("Cost");
            let report = ce::cost_report(&aws, &query, &services, progress.as_ref())
                .await
                .context("cannot build the cost report")?;
            let extras = Extras {
                chart_svg: Some(chart::cost_over_time(
                    &ce::cost_over_time(&report.rows),
                    &report.summary.unit,
                )),
            };
            args.output.emit(&report, &settings, &extras)
        }
        AwsCommand::Organizations {
            command: OrganizationsCommand::Report(args),
        } => {
            let progress = progress_bar("Organizations");
            let report = organizations::account_report(&aws, progress.as_ref())
                .await
                .context("cannot build the Organizations report")?;
            args.output.emit(&report, &settings, &Extras::default())
        }
    }
}

/// Every registered service, read once; the database is closed again before the AWS calls.
async fn registered_services(settings: &Settings) -> anyhow::Result<Vec<Service>> {
    let db = open_database(settings).await?;
    let services = repo::list_all(&db, &ServiceFilter::default())
        .await
        .context("cannot read the registered services")?;
    db.close().await;
    Ok(services)
}

/// A progress bar on stderr when it is a terminal.
struct ProgressBar(indicatif::ProgressBar);

impl Progress for ProgressBar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }

    fn advance(&self, label: &str) {
        self.0.set_message(label.to_owned());
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub(crate) fn progress_bar(what: &'static str) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return Box::new(crate::plugins::NoProgress);
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(what);
    Box::new(ProgressBar(bar))
}
