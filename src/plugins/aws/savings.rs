//! The savings report: resources of the selected accounts and regions that cost money and
//! do nothing (unattached volumes, idle Elastic IPs, orphaned or old snapshots, instances
//! stopped for long, stopped databases) or cost more than they need to (previous-generation
//! instances, gp2 volumes), and functions on deprecated runtimes. Each finding carries why it
//! is waste, the fix, and an estimated monthly cost from the price table, or `risk` when it
//! is not about money.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Address, Filter, Instance, Volume};
use aws_sdk_rds::types::{DbInstance, DbSnapshot};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ebs::{self, Storage};
use super::ec2::tag_map;
use super::lambdas::Function;
use super::prices::{Estimate, PriceSource, Prices, money};
use super::{Aws, AwsError, PageCap, Part, ServiceMatcher, Targets, call, tags_match, to_time};
use crate::config::SavingsSettings;
use crate::plugins::Progress;
use crate::report::{Chart, Figure, Headline, Report, Series, Tabular};

/// Largest page DescribeDBSnapshots returns.
const RDS_PAGE_SIZE: i32 = 100;

/// The kinds of waste the report finds.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// An EBS volume attached to nothing (state `available`).
    UnattachedVolume,
    /// An Elastic IP associated with nothing.
    IdleAddress,
    /// An EBS snapshot older than the threshold whose source volume is gone and which no AMI
    /// of the account uses.
    OrphanedSnapshot,
    /// An EC2 instance stopped for longer than the threshold, still paying for its volumes.
    StoppedInstance,
    /// A running instance of a previous-generation type with a cheaper current equivalent.
    PreviousGeneration,
    /// A gp2 volume in use that would cost less as gp3.
    Gp2Volume,
    /// A Lambda function on a runtime AWS has deprecated (a risk, not a cost).
    DeprecatedRuntime,
    /// A stopped RDS instance: it still pays for storage, and AWS starts it again after 7
    /// days.
    StoppedDatabase,
    /// A manual RDS snapshot older than the threshold.
    OldDatabaseSnapshot,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 9] = [
        FindingKind::UnattachedVolume,
        FindingKind::IdleAddress,
        FindingKind::OrphanedSnapshot,
        FindingKind::StoppedInstance,
        FindingKind::PreviousGeneration,
        FindingKind::Gp2Volume,
        FindingKind::DeprecatedRuntime,
        FindingKind::StoppedDatabase,
        FindingKind::OldDatabaseSnapshot,
    ];

    /// The kind as reports and metrics name it (`unattached-volume`).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnattachedVolume => "unattached-volume",
            FindingKind::IdleAddress => "idle-address",
            FindingKind::OrphanedSnapshot => "orphaned-snapshot",
            FindingKind::StoppedInstance => "stopped-instance",
            FindingKind::PreviousGeneration => "previous-generation",
            FindingKind::Gp2Volume => "gp2-volume",
            FindingKind::DeprecatedRuntime => "deprecated-runtime",
            FindingKind::StoppedDatabase => "stopped-database",
            FindingKind::OldDatabaseSnapshot => "old-database-snapshot",
        }
    }

    /// What fixes a finding of this kind.
    pub fn fix(self) -> &'static str {
        match self {
            FindingKind::UnattachedVolume => {
                "snapshot the volume, then delete it (ec2:CreateSnapshot, ec2:DeleteVolume)"
            }
            FindingKind::IdleAddress => "release the address (ec2:ReleaseAddress)",
            FindingKind::OrphanedSnapshot => {
                "delete the snapshot once nobody needs it (ec2:DeleteSnapshot)"
            }
            FindingKind::StoppedInstance => {
                "create an AMI and terminate the instance, or delete the volumes it no \
                 longer needs"
            }
            FindingKind::PreviousGeneration => {
                "change the instance type to its current-generation equivalent (stop, \
                 ec2:ModifyInstanceAttribute, start)"
            }
            FindingKind::Gp2Volume => {
                "modify the volume to gp3, online and without detaching \
                 (ec2:ModifyVolume)"
            }
            FindingKind::DeprecatedRuntime => "move the function to a supported runtime",
            FindingKind::StoppedDatabase => {
                "delete it with a final snapshot, or keep it stopped with a rule running \
                 aws.rds.stop every 7 days"
            }
            FindingKind::OldDatabaseSnapshot => {
                "delete the snapshot once nobody needs it (rds:DeleteDBSnapshot)"
            }
        }
    }

    fn wants_storage(self) -> bool {
        matches!(
            self,
            FindingKind::UnattachedVolume
                | FindingKind::OrphanedSnapshot
                | FindingKind::StoppedInstance
                | FindingKind::Gp2Volume
        )
    }
}

/// The ages past which old or stopped resources count as waste.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Thresholds {
    /// EBS snapshots of deleted volumes older than this many days.
    pub snapshot_age_days: i64,
    /// EC2 instances stopped for longer than this many days.
    pub stopped_days: i64,
    /// Manual RDS snapshots older than this many days.
    pub database_snapshot_age_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::from(&SavingsSettings::default())
    }
}

impl From<&SavingsSettings> for Thresholds {
    fn from(settings: &SavingsSettings) -> Self {
        Self {
            snapshot_age_days: settings.snapshot_age_days,
            stopped_days: settings.stopped_days,
            database_snapshot_age_days: settings.database_snapshot_age_days,
        }
    }
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SavingsQuery {
    /// Accounts and regions.
    pub targets: Targets,
    /// Only these kinds (all when empty).
    pub kinds: Vec<FindingKind>,
    /// Only resources with these tags (values of one key are alternatives; keys must all
    /// match).
    pub tags: Vec<(String, String)>,
    /// Only the resources of this registered service.
    pub service: Option<String>,
    /// The age thresholds.
    pub thresholds: Thresholds,
}

impl SavingsQuery {
    fn wants(&self, kind: FindingKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// One piece of waste.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of waste.
    pub kind: FindingKind,
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// The resource: volume, address allocation, snapshot, instance, function or DB id.
    pub resource_id: String,
    /// The registered service whose tags the resource carries.
    pub service: Option<String>,
    /// Whole days since the resource was created (or, for a stopped instance, stopped),
    /// where AWS gives the time.
    pub age_days: Option<i64>,
    /// Why it is waste.
    pub why: String,
    /// What fixes it.
    pub fix: String,
    /// Estimated monthly cost (for a previous-generation instance or a gp2 volume, what the
    /// fix saves), from the price table.
    pub monthly_estimate: Option<Decimal>,
    /// The price the table lacks, when there is no estimate (`gp2 volumes in ap-south-2`).
    pub unpriced: Option<String>,
    /// A finding about risk, not money (a deprecated runtime).
    pub risk: bool,
    /// Every tag of the resource.
    pub tags: BTreeMap<String, String>,
}

impl Finding {
    fn priced(mut self, estimate: Estimate) -> Self {
        match estimate {
            Ok(amount) => self.monthly_estimate = Some(amount),
            Err(missing) => self.unpriced = Some(missing),
        }
        self
    }
}

impl Tabular for Finding {
    fn noun() -> &'static str {
        "findings"
    }

    fn facets() -> Vec<&'static str> {
        vec!["kind", "account", "region", "service"]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "est. $/month",
            "kind",
            "account",
            "region",
            "resource",
            "service",
            "age (days)",
            "why",
            "fix",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            match (&self.monthly_estimate, &self.unpriced) {
                (Some(amount), _) => amount.to_string(),
                (None, Some(missing)) => format!("unpriced: {missing}"),
                (None, None) if self.risk => "risk".into(),
                (None, None) => String::new(),
            },
            self.kind.as_str().into(),
            self.account.clone(),
            self.region.clone(),
            self.resource_id.clone(),
            self.service.clone().unwrap_or_default(),
            self.age_days.map(|d| d.to_string()).unwrap_or_default(),
            self.why.clone(),
            self.fix.clone(),
        ]
    }
}

/// Findings and estimated monthly waste of one kind, account or service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Findings.
    pub findings: usize,
    /// Their estimated monthly cost (priced findings only).
    pub estimated_monthly: Decimal,
}

impl Tally {
    fn add(&mut self, finding: &Finding) {
        self.findings += 1;
        self.estimated_monthly += finding.monthly_estimate.unwrap_or_default();
    }
}

/// Totals of a savings report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavingsSummary {
    /// Findings in the report.
    pub findings: usize,
    /// Estimated monthly waste of every priced finding.
    pub estimated_monthly: Decimal,
    /// By kind (every kind looked for, found or not).
    pub by_kind: BTreeMap<FindingKind, Tally>,
    /// By account.
    pub by_account: BTreeMap<String, Tally>,
    /// By registered service; resources of no service under `(none)`.
    pub by_service: BTreeMap<String, Tally>,
    /// Findings about risk rather than money.
    pub risks: usize,
    /// Prices the table lacks, each once; the findings that need them are not in the
    /// totals.
    pub unpriced: Vec<String>,
    /// The age thresholds applied.
    pub thresholds: Thresholds,
    /// Where the prices come from.
    pub prices: Option<PriceSource>,
    /// For context: what Cost Explorer says was billed last month, when asked for and
    /// available.
    pub billed: Option<super::ce::Billed>,
    /// Why the billed total is missing, when it was asked for.
    pub billed_unavailable: Option<String>,
}

/// Everything read from one account × region that the wanted kinds need.
#[derive(Debug, Default)]
struct Inventory {
    storage: Storage,
    addresses: Vec<Address>,
    instances: Vec<Instance>,
    functions: Vec<Function>,
    databases: Vec<DbInstance>,
    database_snapshots: Vec<DbSnapshot>,
}

/// Every Elastic IP of one account × region, as DescribeAddresses gives them.
pub(crate) async fn addresses_in(part: &Part) -> Result<Vec<Address>, AwsError> {
    let client = super::part_client!(aws_sdk_ec2, &part);
    let found = call("ec2:DescribeAddresses", client.describe_addresses().send()).await?;
    Ok(found.addresses.unwrap_or_default())
}

async fn database_snapshots_in(part: &Part) -> Result<Vec<DbSnapshot>, AwsError> {
    let client = super::part_client!(aws_sdk_rds, &part);
    let mut pages = client
        .describe_db_snapshots()
        .snapshot_type("manual")
        .max_records(RDS_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let mut cap = PageCap::new("rds:DescribeDBSnapshots");
    while let Some(page) = call("rds:DescribeDBSnapshots", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        found.extend(page.db_snapshots.unwrap_or_default());
    }
    Ok(found)
}

async fn inventory_of(part: &Part, query: &SavingsQuery) -> Result<Inventory, AwsError> {
    let wants_any = |kinds: &[FindingKind]| kinds.iter().any(|k| query.wants(*k));
    let storage = async {
        if FindingKind::ALL
            .iter()
            .any(|k| k.wants_storage() && query.wants(*k))
        {
            ebs::storage_in(part, query.wants(FindingKind::OrphanedSnapshot)).await
        } else {
            Ok(Storage::default())
        }
    };
    let addresses = async {
        if query.wants(FindingKind::IdleAddress) {
            addresses_in(part).await
        } else {
            Ok(Vec::new())
        }
    };
    let instances = async {
        if wants_any(&[
            FindingKind::StoppedInstance,
            FindingKind::PreviousGeneration,
        ]) {
            let states = Filter::builder()
                .name("instance-state-name")
                .values("running")
                .values("stopped")
                .build();
            super::ec2::instances_in(part, vec![states], Some).await
        } else {
            Ok(Vec::new())
        }
    };
    let functions = async {
        if query.wants(FindingKind::DeprecatedRuntime) {
            super::lambdas::functions_in(part.clone()).await
        } else {
            Ok(Vec::new())
        }
    };
    let databases = async {
        if query.wants(FindingKind::StoppedDatabase) {
            Ok(super::rds::instances_in(part.clone(), Vec::new())
                .await?
                .into_iter()
                .map(|(_, db)| db)
                .collect())
        } else {
            Ok(Vec::new())
        }
    };
    let database_snapshots = async {
        if query.wants(FindingKind::OldDatabaseSnapshot) {
            database_snapshots_in(part).await
        } else {
            Ok(Vec::new())
        }
    };
    type Parts = (
        Storage,
        Vec<Address>,
        Vec<Instance>,
        Vec<Function>,
        Vec<DbInstance>,
        Vec<DbSnapshot>,
    );
    let (storage, addresses, instances, functions, databases, database_snapshots): Parts = futures::try_join!(
        storage,
        addresses,
        instances,
        functions,
        databases,
        database_snapshots
    )?;
    Ok(Inventory {
        storage,
        addresses,
        instances,
        functions,
        databases,
        database_snapshots,
    })
}

/// When a stopped instance was stopped, from its state-transition reason
/// (`User initiated (2024-01-31 10:00:00 GMT)`).
pub fn stopped_since(reason: &str) -> Option<OffsetDateTime> {
    let inside = reason.rsplit_once('(')?.1.strip_suffix(')')?;
    let stamp = inside
        .strip_suffix(" GMT")
        .or_else(|| inside.strip_suffix(" UTC"))?;
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(stamp, &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Whole days from `since` to `now`.
pub fn age_days(since: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<i64> {
    since.map(|t| (now - t).whole_days())
}

/// Whether a resource `age` days old is past `threshold` days. A resource whose age AWS does
/// not give is past only a threshold of 0.
pub fn old_enough(age: Option<i64>, threshold: i64) -> bool {
    age.map_or(threshold <= 0, |days| days >= threshold)
}

fn db_tags(tags: Option<Vec<aws_sdk_rds::types::Tag>>) -> BTreeMap<String, String> {
    tags.unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

/// The context a part's findings are made in.
struct Judge<'a> {
    part: &'a Part,
    query: &'a SavingsQuery,
    matcher: &'a ServiceMatcher,
    prices: &'a Prices,
    now: OffsetDateTime,
}

impl Judge<'_> {
    fn finding(
        &self,
        kind: FindingKind,
        resource_id: String,
        tags: BTreeMap<String, String>,
        age_days: Option<i64>,
        why: String,
    ) -> Finding {
        Finding {
            kind,
            account: self.part.account.clone(),
            region: self.part.region.clone(),
            resource_id,
            service: self.matcher.service_of(&tags).map(str::to_owned),
            age_days,
            why,
            fix: kind.fix().into(),
            monthly_estimate: None,
            unpriced: None,
            risk: false,
            tags,
        }
    }

    fn volumes(&self, volumes: &[Volume], findings: &mut Vec<Finding>) {
        let region = &self.part.region;
        for volume in volumes {
            let id = volume.volume_id.clone().unwrap_or_default();
            let volume_type = volume
                .volume_type
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default();
            let gib = volume.size.map_or(0, i64::from);
            let state = volume.state.as_ref().map(|s| s.as_str()).unwrap_or("");
            let age = age_days(volume.create_time.as_ref().and_then(to_time), self.now);
            let tags = tag_map(volume.tags.clone());
            if state == "available" && self.query.wants(FindingKind::UnattachedVolume) {
                findings.push(
                    self.finding(
                        FindingKind::UnattachedVolume,
                        id,
                        tags,
                        age,
                        format!("{volume_type} volume of {gib} GiB attached to nothing"),
                    )
                    .priced(self.prices.volume(region, &volume_type, gib)),
                );
            } else if state == "in-use"
                && volume_type == "gp2"
                && self.query.wants(FindingKind::Gp2Volume)
            {
                let saving = self
                    .prices
                    .volume(region, "gp2", gib)
                    .and_then(|gp2| Ok(gp2 - self.prices.volume(region, "gp3", gib)?));
                findings.push(
                    self.finding(
                        FindingKind::Gp2Volume,
                        id,
                        tags,
                        age,
                        format!(
                            "gp2 volume of {gib} GiB; gp3 gives at least its baseline \
                             performance for less (the estimate is the saving)"
                        ),
                    )
                    .priced(saving),
                );
            }
        }
    }

    fn snapshots(&self, storage: &Storage, findings: &mut Vec<Finding>) {
        if !self.query.wants(FindingKind::OrphanedSnapshot) {
            return;
        }
        let volumes: BTreeSet<&str> = storage
            .volumes
            .iter()
            .filter_map(|v| v.volume_id.as_deref())
            .collect();
        for snapshot in &storage.snapshots {
            let id = snapshot.snapshot_id.clone().unwrap_or_default();
            let source = snapshot
                .volume_id
                .as_deref()
                .filter(|v| *v != "vol-ffffffff");
            let age = age_days(snapshot.start_time.as_ref().and_then(to_time), self.now);
            let source_gone = source.is_none_or(|v| !volumes.contains(v));
            if !source_gone
                || storage.amis_by_snapshot.contains_key(&id)
                || !old_enough(age, self.query.thresholds.snapshot_age_days)
            {
                continue;
            }
            let gib = snapshot.volume_size.map_or(0, i64::from);
            let why = match source {
                Some(volume) => {
                    format!("snapshot of {gib} GiB; its volume {volume} is gone and no AMI uses it")
                }
                None => {
                    format!("snapshot of {gib} GiB of no volume of this account; no AMI uses it")
                }
            };
            findings.push(
                self.finding(
                    FindingKind::OrphanedSnapshot,
                    id,
                    tag_map(snapshot.tags.clone()),
                    age,
                    why,
                )
                .priced(self.prices.snapshot(&self.part.region, gib)),
            );
        }
    }

    fn addresses(&self, addresses: Vec<Address>, findings: &mut Vec<Finding>) {
        for address in addresses {
            // Absent when unassociated; some implementations send them empty instead.
            let set = |field: &Option<String>| field.as_deref().is_some_and(|v| !v.is_empty());
            if set(&address.association_id)
                || set(&address.instance_id)
                || set(&address.network_interface_id)
            {
                continue;
            }
            let ip = address.public_ip.clone().unwrap_or_default();
            let id = address.allocation_id.clone().unwrap_or_else(|| ip.clone());
            findings.push(
                self.finding(
                    FindingKind::IdleAddress,
                    id,
                    tag_map(address.tags),
                    None,
                    format!("Elastic IP {ip} associated with nothing"),
                )
                .priced(self.prices.idle_address(&self.part.region)),
            );
        }
    }

    fn instances(&self, instances: Vec<Instance>, volumes: &[Volume], findings: &mut Vec<Finding>) {
        let region = &self.part.region;
        for instance in instances {
            let id = instance.instance_id.clone().unwrap_or_default();
            let state = instance
                .state
                .as_ref()
                .and_then(|s| s.name.as_ref())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            let instance_type = instance
                .instance_type
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default();
            let tags = tag_map(instance.tags.clone());
            if state == "stopped" && self.query.wants(FindingKind::StoppedInstance) {
                let since = instance
                    .state_transition_reason
                    .as_deref()
                    .and_then(stopped_since);
                let age = age_days(since, self.now);
                if !old_enough(age, self.query.thresholds.stopped_days) {
                    continue;
                }
                let attached: Vec<&Volume> = volumes
                    .iter()
                    .filter(|v| {
                        v.attachments
                            .iter()
                            .flatten()
                            .any(|a| a.instance_id.as_deref() == Some(id.as_str()))
                    })
                    .collect();
                let gib: i64 = attached.iter().map(|v| v.size.map_or(0, i64::from)).sum();
                let cost = attached.iter().try_fold(Decimal::ZERO, |sum, v| {
                    let volume_type = v.volume_type.as_ref().map_or("", |t| t.as_str());
                    Ok::<_, String>(
                        sum + self.prices.volume(
                            region,
                            volume_type,
                            v.size.map_or(0, i64::from),
                        )?,
                    )
                });
                let since_text = since.map_or_else(
                    || "for an unknown time".to_owned(),
                    |t| format!("since {}", t.date()),
                );
                findings.push(
                    self.finding(
                        FindingKind::StoppedInstance,
                        id,
                        tags,
                        age,
                        format!(
                            "{instance_type} stopped {since_text}, still paying for {} \
                             volume(s) of {gib} GiB",
                            attached.len()
                        ),
                    )
                    .priced(cost),
                );
            } else if state == "running" && self.query.wants(FindingKind::PreviousGeneration) {
                let Some(current) = self.prices.current_generation(&instance_type) else {
                    continue;
                };
                let saving = self
                    .prices
                    .instance(region, &instance_type)
                    .and_then(|old| Ok(old - self.prices.instance(region, &current)?));
                let age = age_days(instance.launch_time.as_ref().and_then(to_time), self.now);
                findings.push(
                    self.finding(
                        FindingKind::PreviousGeneration,
                        id,
                        tags,
                        age,
                        format!(
                            "{instance_type} is a previous generation; {current} costs less \
                             (the estimate is the saving)"
                        ),
                    )
                    .priced(saving.map(money)),
                );
            }
        }
    }

    fn functions(&self, functions: Vec<Function>, findings: &mut Vec<Finding>) {
        let today = self.now.date();
        for Function {
            configuration: function,
            tags,
        } in functions
        {
            let runtime = function
                .runtime
                .as_ref()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default();
            let Some(date) = super::lambdas::deprecation_date(&runtime).filter(|d| *d <= today)
            else {
                continue;
            };
            let mut finding = self.finding(
                FindingKind::DeprecatedRuntime,
                function.function_name.unwrap_or_default(),
                tags,
                None,
                format!(
                    "runtime {runtime} deprecated since {date}: no security patches, and \
                     AWS blocks updates to the function later"
                ),
            );
            finding.risk = true;
            findings.push(finding);
        }
    }

    fn databases(&self, databases: Vec<DbInstance>, findings: &mut Vec<Finding>) {
        for db in databases {
            if db.db_instance_status.as_deref() != Some("stopped") {
                continue;
            }
            let storage_type = db.storage_type.clone().unwrap_or_default();
            let gib = db.allocated_storage.map_or(0, i64::from);
            let class = db.db_instance_class.clone().unwrap_or_default();
            findings.push(
                self.finding(
                    FindingKind::StoppedDatabase,
                    db.db_instance_identifier.clone().unwrap_or_default(),
                    db_tags(db.tag_list),
                    None,
                    format!(
                        "{class} stopped, still paying for {gib} GiB of {storage_type} \
                         storage; AWS starts it again 7 days after it stopped"
                    ),
                )
                .priced(self.prices.database_storage(
                    &self.part.region,
                    &storage_type,
                    gib,
                )),
            );
        }
    }

    fn database_snapshots(&self, snapshots: Vec<DbSnapshot>, findings: &mut Vec<Finding>) {
        for snapshot in snapshots {
            let age = age_days(
                snapshot.snapshot_create_time.as_ref().and_then(to_time),
                self.now,
            );
            if !old_enough(age, self.query.thresholds.database_snapshot_age_days) {
                continue;
            }
            let gib = snapshot.allocated_storage.map_or(0, i64::from);
            let instance = snapshot.db_instance_identifier.clone().unwrap_or_default();
            findings.push(
                self.finding(
                    FindingKind::OldDatabaseSnapshot,
                    snapshot.db_snapshot_identifier.clone().unwrap_or_default(),
                    db_tags(snapshot.tag_list),
                    age,
                    format!("manual snapshot of {instance} ({gib} GiB), kept until deleted"),
                )
                .priced(self.prices.database_snapshot(&self.part.region, gib)),
            );
        }
    }
}

fn findings_of(
    part: &Part,
    inventory: Inventory,
    query: &SavingsQuery,
    matcher: &ServiceMatcher,
    prices: &Prices,
    now: OffsetDateTime,
) -> Vec<Finding> {
    let judge = Judge {
        part,
        query,
        matcher,
        prices,
        now,
    };
    let mut findings = Vec::new();
    judge.volumes(&inventory.storage.volumes, &mut findings);
    judge.snapshots(&inventory.storage, &mut findings);
    judge.addresses(inventory.addresses, &mut findings);
    judge.instances(
        inventory.instances,
        &inventory.storage.volumes,
        &mut findings,
    );
    judge.functions(inventory.functions, &mut findings);
    judge.databases(inventory.databases, &mut findings);
    judge.database_snapshots(inventory.database_snapshots, &mut findings);
    findings.retain(|f| {
        tags_match(&query.tags, &f.tags)
            && query
                .service
                .as_ref()
                .is_none_or(|name| f.service.as_ref() == Some(name))
    });
    findings
}

/// Sorts findings by money, largest first; unpriced findings next, then risks; ties by
/// kind, account, region and resource.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let rank = |f: &Finding| match (f.monthly_estimate, &f.unpriced) {
            (Some(_), _) => 0,
            (None, Some(_)) => 1,
            (None, None) => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| b.monthly_estimate.cmp(&a.monthly_estimate))
            .then_with(|| {
                (a.kind, &a.account, &a.region, &a.resource_id).cmp(&(
                    b.kind,
                    &b.account,
                    &b.region,
                    &b.resource_id,
                ))
            })
    });
}

/// Totals by kind, account and service.
pub fn summarize(findings: &[Finding], query: &SavingsQuery, prices: &Prices) -> SavingsSummary {
    let mut summary = SavingsSummary {
        findings: findings.len(),
        thresholds: query.thresholds,
        prices: Some(prices.source()),
        ..SavingsSummary::default()
    };
    for kind in FindingKind::ALL.into_iter().filter(|k| query.wants(*k)) {
        summary.by_kind.insert(kind, Tally::default());
    }
    let mut unpriced = BTreeSet::new();
    for finding in findings {
        summary.estimated_monthly += finding.monthly_estimate.unwrap_or_default();
        summary
            .by_kind
            .entry(finding.kind)
            .or_default()
            .add(finding);
        summary
            .by_account
            .entry(finding.account.clone())
            .or_default()
            .add(finding);
        summary
            .by_service
            .entry(
                finding
                    .service
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
            )
            .or_default()
            .add(finding);
        summary.risks += usize::from(finding.risk);
        if let Some(missing) = &finding.unpriced {
            unpriced.insert(missing.clone());
        }
    }
    summary.unpriced = unpriced.into_iter().collect();
    summary
}

/// Builds the savings report: the waste of the wanted kinds in every selected account ×
/// region, each finding priced from `prices`, sorted by money.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn savings_report(
    aws: &Aws,
    query: &SavingsQuery,
    services: &ServiceMatcher,
    prices: &Prices,
    progress: &dyn Progress,
) -> Result<Report<Finding, SavingsSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    // Each part's SDK responses become findings as soon as the part is read.
    let mut fan_out = aws
        .fan_out(&query.targets, progress, |part| async move {
            let inventory = Box::pin(inventory_of(&part, query)).await?;
            Ok(findings_of(&part, inventory, query, services, prices, now))
        })
        .await?;
    let mut findings = std::mem::take(&mut fan_out.rows);
    sort(&mut findings);
    let summary = summarize(&findings, query, prices);
    let mut filters = BTreeMap::new();
    query.targets.describe(&mut filters);
    if !query.kinds.is_empty() {
        let kinds: Vec<&str> = query.kinds.iter().map(|k| k.as_str()).collect();
        filters.insert("kind".into(), kinds.join(","));
    }
    if !query.tags.is_empty() {
        let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        filters.insert("tag".into(), tags.join(","));
    }
    if let Some(name) = &query.service {
        filters.insert("service".into(), name.clone());
    }
    Ok(fan_out.into_report(
        "aws.savings",
        "Savings: estimated monthly waste",
        filters,
        now,
        findings,
        summary,
    ))
}

impl Headline<Finding> for SavingsSummary {
    fn figures(&self, _rows: &[Finding]) -> Vec<Figure> {
        let mut figures = vec![
            Figure::new(
                "Estimated monthly waste",
                crate::report::money(self.estimated_monthly, "USD"),
            ),
            Figure::new("Risks", crate::report::number(self.risks as f64, 0))
                .noted("findings that are risks, not costs"),
        ];
        if let Some(billed) = &self.billed {
            figures.push(
                Figure::new("Billed", crate::report::money(billed.amount, &billed.unit))
                    .noted(format!("{} to {}", billed.period.start, billed.period.end)),
            );
        }
        figures
    }

    /// Estimated monthly waste by kind: priced kinds only, largest first.
    fn chart(&self, _rows: &[Finding]) -> Option<Chart> {
        use rust_decimal::prelude::ToPrimitive;
        let mut kinds: Vec<(&FindingKind, &Tally)> = self
            .by_kind
            .iter()
            .filter(|(_, tally)| !tally.estimated_monthly.is_zero())
            .collect();
        kinds.sort_by_key(|(_, tally)| std::cmp::Reverse(tally.estimated_monthly));
        Some(Chart {
            title: "Estimated monthly waste by kind".into(),
            x_label: "kind".into(),
            y_label: "USD per month".into(),
            decimals: 2,
            categories: kinds.iter().map(|(k, _)| k.as_str().to_owned()).collect(),
            series: vec![Series {
                name: String::new(),
                values: kinds
                    .iter()
                    .map(|(_, t)| t.estimated_monthly.to_f64().unwrap_or_default())
                    .collect(),
            }],
        })
    }

    fn empty(&self) -> Option<String> {
        Some("No waste found.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_stop_time_is_read_from_the_transition_reason() {
        assert_eq!(
            stopped_since("User initiated (2024-01-31 10:00:05 GMT)"),
            Some(datetime!(2024-01-31 10:00:05 UTC))
        );
        assert_eq!(
            stopped_since("User initiated (2026-12-01 18:00:00 UTC)"),
            Some(datetime!(2026-12-01 18:00:00 UTC))
        );
        assert_eq!(stopped_since("Server.ScheduledStop"), None);
        assert_eq!(stopped_since("User initiated (yesterday)"), None);
        assert_eq!(stopped_since(""), None);
    }

    #[test]
    fn ages_count_whole_days_and_thresholds_include_their_day() {
        let now = datetime!(2026-12-01 12:00 UTC);
        assert_eq!(
            age_days(Some(datetime!(2026-11-01 12:00 UTC)), now),
            Some(30)
        );
        assert_eq!(
            age_days(Some(datetime!(2026-11-01 12:01 UTC)), now),
            Some(29)
        );
        assert_eq!(age_days(None, now), None);
        assert!(old_enough(Some(30), 30));
        assert!(!old_enough(Some(29), 30));
        assert!(old_enough(Some(0), 0));
        // An age AWS does not give passes only a threshold of 0.
        assert!(old_enough(None, 0));
        assert!(!old_enough(None, 1));
    }

    fn finding(kind: FindingKind, id: &str, estimate: Option<&str>, unpriced: bool) -> Finding {
        Finding {
            kind,
            account: "111111111111".into(),
            region: "us-east-1".into(),
            resource_id: id.into(),
            service: None,
            age_days: None,
            why: String::new(),
            fix: kind.fix().into(),
            monthly_estimate: estimate.map(|e| e.parse().unwrap_or_default()),
            unpriced: unpriced.then(|| "x".to_owned()),
            risk: estimate.is_none() && !unpriced,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn findings_sort_by_money_then_unpriced_then_risk() {
        let mut findings = vec![
            finding(FindingKind::DeprecatedRuntime, "fn", None, false),
            finding(FindingKind::IdleAddress, "eip", Some("3.65"), false),
            finding(FindingKind::Gp2Volume, "vol-x", None, true),
            finding(FindingKind::UnattachedVolume, "vol-a", Some("10.00"), false),
            finding(FindingKind::OrphanedSnapshot, "snap", Some("3.65"), false),
        ];
        sort(&mut findings);
        let order: Vec<&str> = findings.iter().map(|f| f.resource_id.as_str()).collect();
        assert_eq!(order, ["vol-a", "eip", "snap", "vol-x", "fn"]);
    }

    #[test]
    fn the_summary_totals_by_kind_account_and_service() {
        let prices = Prices::embedded().expect("the shipped table");
        let query = SavingsQuery {
            kinds: vec![FindingKind::IdleAddress, FindingKind::UnattachedVolume],
            ..SavingsQuery::default()
        };
        let mut owned = finding(FindingKind::UnattachedVolume, "vol-a", Some("10.00"), false);
        owned.service = Some("billing".into());
        let findings = vec![
            owned,
            finding(FindingKind::UnattachedVolume, "vol-b", Some("2.50"), false),
            finding(FindingKind::UnattachedVolume, "vol-c", None, true),
        ];
        let summary = summarize(&findings, &query, &prices);
        assert_eq!(summary.findings, 3);
        assert_eq!(
            summary.estimated_monthly,
            "12.50".parse().unwrap_or_default()
        );
        let volumes = &summary.by_kind[&FindingKind::UnattachedVolume];
        assert_eq!(volumes.findings, 3);
        assert_eq!(
            volumes.estimated_monthly,
            "12.50".parse().unwrap_or_default()
        );
        // A kind looked for and not found is listed with nothing.
        assert_eq!(summary.by_kind[&FindingKind::IdleAddress], Tally::default());
        assert!(!summary.by_kind.contains_key(&FindingKind::Gp2Volume));
        assert_eq!(summary.by_service["billing"].findings, 1);
        assert_eq!(summary.by_service["(none)"].findings, 2);
        assert_eq!(summary.unpriced, ["x"]);
        assert_eq!(summary.by_account["111111111111"].findings, 3);
    }
}
