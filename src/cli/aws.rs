//! `pincher aws …`: AWS inventory and cost reports, rendered to the terminal or a file, and
//! stopping and starting EC2 and RDS instances.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::actions::{self, Consent, checked};
use super::{Outcome, emit_report, with_stdout};
use crate::actions::Action;
use crate::actions::cost_report::{CostReport, CostReportParams, DEFAULT_METRIC};
use crate::actions::ebs_report::{EbsReport, EbsReportParams};
use crate::actions::ec2_power::{Ec2Start, Ec2Stop};
use crate::actions::ec2_report::{Ec2Report, Ec2ReportParams};
use crate::actions::lambda_report::{LambdaReport, LambdaReportParams};
use crate::actions::organizations_report::{OrganizationsReport, OrganizationsReportParams};
use crate::actions::params::{Selection, TagFilter, parse_date};
use crate::actions::power::{DEFAULT_MAX_TARGETS, PowerOutcome, PowerParams};
use crate::actions::rds_power::{RdsStart, RdsStop};
use crate::actions::rds_report::{RdsReport, RdsReportParams};
use crate::actions::savings_fix::{DeleteVolume, DeleteVolumeParams, FixParams, ReleaseAddress};
use crate::actions::savings_report::{SavingsReport, SavingsReportParams};
use crate::app::Context;
use crate::config::Settings;
use crate::plugins::aws::ce::{Granularity, GroupBy};
use crate::plugins::aws::ebs::EbsKind;
use crate::plugins::aws::savings::FindingKind;
use crate::render::{OutputFormat, ReportFormat};

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
    /// The accounts and regions selected, as the actions take them.
    pub(crate) fn selection(&self) -> Selection {
        let mut regions = self.regions.clone();
        regions.extend(self.region.clone());
        Selection {
            regions,
            all_regions: self.all_regions,
            accounts: self.accounts.clone(),
            all_accounts: self.all_accounts,
        }
    }

    /// The profile given with `--profile`.
    pub(crate) fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
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
    /// EBS volumes and snapshots.
    Ebs {
        #[command(subcommand)]
        command: EbsCommand,
    },
    /// Waste: resources that cost money and do nothing, with an estimated monthly cost.
    Savings {
        #[command(subcommand)]
        command: SavingsCommand,
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
    /// Stop the instances selected by --ids, --tag or --service.
    Stop(PowerArgs),
    /// Start the instances selected by --ids, --tag or --service.
    Start(PowerArgs),
    /// Release the Elastic IPs selected by --ids (allocation ids), --tag, --service or
    /// --findings; only unassociated ones are released.
    ReleaseAddress(FixArgs),
}

#[derive(Debug, Subcommand)]
enum RdsCommand {
    /// DB instances of the selected accounts and regions, with their registered services.
    Report(RdsArgs),
    /// Stop the DB instances selected by --ids, --tag or --service (AWS starts them again
    /// after 7 days).
    Stop(PowerArgs),
    /// Start the DB instances selected by --ids, --tag or --service.
    Start(PowerArgs),
}

/// What to stop or start, and how.
#[derive(Debug, Args)]
struct PowerArgs {
    /// Resource ids (comma-separated): instance ids, DB instance identifiers, allocation ids
    /// or volume ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    ids: Vec<String>,
    /// Only resources with this tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
    /// The resources of this registered service (by its tags).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Refuse when more than this many resources would change.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TARGETS)]
    max_targets: u32,
    /// List the targets and check the permissions; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation (required when there is no terminal).
    #[arg(long)]
    yes: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
}

/// What a savings fix changes, and how.
#[derive(Debug, Args)]
struct FixArgs {
    #[command(flatten)]
    change: PowerArgs,
    /// Target the savings report's findings of this kind (idle addresses, unattached
    /// volumes), narrowed by --ids, --tag and --service when given.
    #[arg(long)]
    findings: bool,
    /// With --findings: only findings at least this many days old.
    #[arg(long, value_name = "DAYS", requires = "findings")]
    min_age_days: Option<u32>,
}

impl PowerArgs {
    fn params(&self, selection: Selection) -> PowerParams {
        PowerParams {
            ids: self.ids.clone(),
            tags: self
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            service: self.service.clone(),
            selection,
            max_targets: self.max_targets,
        }
    }
}

impl FixArgs {
    fn params(&self, selection: Selection) -> FixParams {
        FixParams {
            target: self.change.params(selection),
            findings: self.findings,
            min_age_days: self.min_age_days,
        }
    }
}

#[derive(Debug, Args)]
struct DeleteVolumeArgs {
    #[command(flatten)]
    fix: FixArgs,
    /// Delete without taking a snapshot of each volume first.
    #[arg(long)]
    no_snapshot: bool,
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
    #[arg(long, default_value = "monthly", value_parser = granularity)]
    granularity: Granularity,
    /// Cost metric: UnblendedCost, AmortizedCost, NetUnblendedCost, BlendedCost, …
    #[arg(long, default_value = DEFAULT_METRIC)]
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

fn granularity(text: &str) -> Result<Granularity, String> {
    Granularity::parse(text).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum EbsCommand {
    /// Volumes and snapshots of the selected accounts and regions, with their registered
    /// services and estimated monthly cost.
    Report(EbsArgs),
    /// Delete the unattached volumes selected by --ids, --tag, --service or --findings,
    /// each after a snapshot (tagged pincher:deleted-volume) unless --no-snapshot.
    DeleteVolume(DeleteVolumeArgs),
}

#[derive(Debug, Subcommand)]
enum SavingsCommand {
    /// Waste of the selected accounts and regions, sorted by estimated monthly cost: each
    /// finding with why it is waste and what fixes it.
    Report(SavingsArgs),
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
    /// Only instances with this tag (repeatable; every key must match, several values of
    /// one key are alternatives).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
    /// Only instances of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct EbsArgs {
    /// Only volumes or only snapshots (default both).
    #[arg(long, value_name = "KIND")]
    kind: Option<EbsKind>,
    /// Only resources with this tag (repeatable; every key must match, several values of
    /// one key are alternatives).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
    /// Only resources of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct SavingsArgs {
    /// Only findings of this kind (repeatable or comma-separated; default all).
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<FindingKind>,
    /// Only resources with this tag (repeatable; every key must match, several values of
    /// one key are alternatives).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
    /// Only resources of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// EBS snapshots of deleted volumes count from this age (default
    /// `savings.snapshot_age_days`).
    #[arg(long, value_name = "DAYS")]
    snapshot_age_days: Option<i64>,
    /// Instances count when stopped this many days (default `savings.stopped_days`).
    #[arg(long, value_name = "DAYS")]
    stopped_days: Option<i64>,
    /// Manual RDS snapshots count from this age (default
    /// `savings.database_snapshot_age_days`).
    #[arg(long, value_name = "DAYS")]
    database_snapshot_age_days: Option<i64>,
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
    /// Only functions with this tag (repeatable; every key must match, several values of
    /// one key are alternatives).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
    /// Only functions of this registered service (by name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
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
        ctx: &Context,
    ) -> anyhow::Result<Outcome>
    where
        R: crate::report::Tabular + serde::Serialize,
        S: serde::Serialize + crate::report::Headline<R>,
    {
        emit_report(report, self.format(), self.out.as_deref(), &ctx.templates)
    }

    /// Whether rows stream to stdout as parts finish: JSON lines, and no `--out` file.
    fn streams(&self) -> bool {
        self.format() == ReportFormat::Jsonl && self.out.is_none()
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
                "jsonl" | "ndjson" => Some(ReportFormat::Jsonl),
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
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = TagFilter::parse)]
    tags: Vec<TagFilter>,
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
pub async fn run(opts: Opts, mut settings: Settings) -> anyhow::Result<Outcome> {
    if let Some(profile) = &opts.targets.profile {
        settings.aws.profile = Some(profile.clone());
    }
    let selection = opts.targets.selection();
    match opts.command {
        AwsCommand::Ec2 { command } => match command {
            Ec2Command::Report(args) => {
                let ctx = super::context(settings, true).await?;
                let params = checked(Ec2ReportParams {
                    selection,
                    states: args.states,
                    tags: args.tags,
                    types: args.types,
                    service: args.service,
                    include_tags: args.include_tags,
                })?;
                let report = if args.output.streams() {
                    actions::read_streamed::<Ec2Report>(&ctx, &params, "EC2").await?
                } else {
                    actions::read::<Ec2Report>(&ctx, &params, "EC2").await?
                };
                args.output.emit(&report, &ctx)
            }
            Ec2Command::Stop(args) => power::<Ec2Stop>(settings, selection, args).await,
            Ec2Command::ReleaseAddress(args) => {
                let params = args.params(selection);
                change_targets::<ReleaseAddress>(settings, params, &args.change).await
            }
            Ec2Command::Start(args) => power::<Ec2Start>(settings, selection, args).await,
        },
        AwsCommand::Rds { command } => match command {
            RdsCommand::Report(args) => {
                let ctx = super::context(settings, true).await?;
                let params = checked(RdsReportParams {
                    selection,
                    engines: args.engines,
                    tags: args.tags,
                    service: args.service,
                })?;
                let report = actions::read::<RdsReport>(&ctx, &params, "RDS").await?;
                args.output.emit(&report, &ctx)
            }
            RdsCommand::Stop(args) => power::<RdsStop>(settings, selection, args).await,
            RdsCommand::Start(args) => power::<RdsStart>(settings, selection, args).await,
        },
        AwsCommand::Ebs {
            command: EbsCommand::DeleteVolume(args),
        } => {
            let params = DeleteVolumeParams {
                target: args.fix.params(selection),
                snapshot: !args.no_snapshot,
            };
            change_targets::<DeleteVolume>(settings, params, &args.fix.change).await
        }
        AwsCommand::Ebs {
            command: EbsCommand::Report(args),
        } => {
            let ctx = super::context(settings, true).await?;
            let params = checked(EbsReportParams {
                selection,
                kinds: args.kind.into_iter().collect(),
                tags: args.tags,
                service: args.service,
            })?;
            let report = actions::read::<EbsReport>(&ctx, &params, "EBS").await?;
            args.output.emit(&report, &ctx)
        }
        AwsCommand::Savings {
            command: SavingsCommand::Report(args),
        } => {
            let ctx = super::context(settings, true).await?;
            let params = checked(SavingsReportParams {
                selection,
                kinds: args.kinds,
                tags: args.tags,
                service: args.service,
                snapshot_age_days: args.snapshot_age_days,
                stopped_days: args.stopped_days,
                database_snapshot_age_days: args.database_snapshot_age_days,
            })?;
            let report = actions::read::<SavingsReport>(&ctx, &params, "savings").await?;
            args.output.emit(&report, &ctx)
        }
        AwsCommand::Lambda {
            command: LambdaCommand::Report(args),
        } => {
            let ctx = super::context(settings, true).await?;
            let params = checked(LambdaReportParams {
                selection,
                runtimes: args.runtimes,
                deprecated: args.deprecated,
                tags: args.tags,
                service: args.service,
            })?;
            let report = actions::read::<LambdaReport>(&ctx, &params, "Lambda").await?;
            args.output.emit(&report, &ctx)
        }
        AwsCommand::Ce {
            command: CeCommand::Report(args),
        } => {
            let params = checked(CostReportParams {
                start: args.start,
                end: args.end,
                granularity: args.granularity,
                metric: args.metric,
                group_by: args.group_by,
                forecast: args.forecast,
            })?;
            let registered = params.get().grouping() == Some(GroupBy::RegisteredService);
            let ctx = super::context(settings, registered).await?;
            let report = actions::read::<CostReport>(&ctx, &params, "Cost").await?;
            args.output.emit(&report, &ctx)
        }
        AwsCommand::Organizations {
            command: OrganizationsCommand::Report(args),
        } => {
            let ctx = super::context(settings, false).await?;
            let params = checked(OrganizationsReportParams {})?;
            let report =
                actions::read::<OrganizationsReport>(&ctx, &params, "Organizations").await?;
            args.output.emit(&report, &ctx)
        }
    }
}

/// Stops or starts instances: checks the selection, asks (or refuses without a terminal),
/// runs and prints one line per target.
async fn power<A>(
    settings: Settings,
    selection: Selection,
    args: PowerArgs,
) -> anyhow::Result<Outcome>
where
    A: Action<Params = PowerParams, Outcome = PowerOutcome>,
{
    let params = args.params(selection);
    change_targets::<A>(settings, params, &args).await
}

/// Runs a changing action on targets: checks the params, asks (or refuses without a
/// terminal), runs and prints one line per target.
async fn change_targets<A>(
    settings: Settings,
    params: A::Params,
    args: &PowerArgs,
) -> anyhow::Result<Outcome>
where
    A: Action<Outcome = PowerOutcome>,
{
    let params = checked(params)?;
    let consent = Consent {
        dry_run: args.dry_run,
        yes: args.yes,
    };
    consent.check(A::NAME)?;
    let ctx = super::context(settings, true).await?;
    let (outcome, run, exit) = actions::change::<A>(&ctx, &params, consent, "AWS").await?;
    match args.output {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&outcome)?;
            if let serde_json::Value::Object(object) = &mut value {
                object.insert(
                    "run".into(),
                    run.as_ref()
                        .map_or(serde_json::Value::Null, |r| r.id.to_string().into()),
                );
            }
            with_stdout(|out| crate::render::write_json(out, &value))?;
        }
        OutputFormat::Table => actions::print_targets(&outcome.targets)?,
    }
    for error in &outcome.errors {
        eprintln!("warning: {}", crate::render::describe_error(error));
    }
    let counts: Vec<String> = outcome
        .summary
        .iter()
        .map(|(result, n)| format!("{n} {result}"))
        .collect();
    let run = run.map(|r| format!(" (run {})", r.id)).unwrap_or_default();
    let dry = if outcome.dry_run { "dry run: " } else { "" };
    eprintln!(
        "{dry}{}: {}{run}",
        A::NAME,
        if counts.is_empty() {
            "nothing matched the selection".to_owned()
        } else {
            counts.join(", ")
        }
    );
    Ok(exit)
}
