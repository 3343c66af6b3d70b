//! The storage inventory: the EBS volumes and snapshots of the selected accounts and regions,
//! each with its registered service and an estimated monthly cost from the price table;
//! snapshots say whether their source volume still exists and which AMIs use them.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Image, Snapshot, Volume};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ec2::tag_map;
use super::prices::{PriceSource, Prices};
use super::{Aws, AwsError, PageCap, Part, ServiceMatcher, Targets, call, tags_match, to_time};
use crate::plugins::Progress;
use crate::report::{Figure, Headline, Report, Tabular, money, number};

/// Largest page DescribeVolumes and DescribeSnapshots return.
const PAGE_SIZE: i32 = 1000;

/// Volumes or snapshots.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EbsKind {
    /// EBS volumes.
    Volumes,
    /// EBS snapshots owned by the account.
    Snapshots,
}

/// What to include in an EBS report.
#[derive(Debug, Clone, Default)]
pub struct EbsQuery {
    /// Accounts and regions.
    pub targets: Targets,
    /// Volumes, snapshots, or (empty) both.
    pub kinds: Vec<EbsKind>,
    /// Only resources with these tags (values of one key are alternatives; keys must all
    /// match).
    pub tags: Vec<(String, String)>,
    /// Only the resources of this registered service.
    pub service: Option<String>,
}

impl EbsQuery {
    fn wants(&self, kind: EbsKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// One volume or snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbsRow {
    /// `volume` or `snapshot`.
    pub kind: String,
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Volume or snapshot id.
    pub id: String,
    /// Volume type (`gp3`, `gp2`, `io2`, …); for a snapshot, its tier (`standard`,
    /// `archive`).
    pub volume_type: String,
    /// Size in GiB (a snapshot's is its volume's).
    pub size_gib: i64,
    /// State: `available`, `in-use`, … for volumes; `completed`, `pending`, … for
    /// snapshots.
    pub state: String,
    /// The instances a volume is attached to.
    pub attached_to: Vec<String>,
    /// The volume a snapshot was taken of.
    pub source_volume: Option<String>,
    /// Whether that volume still exists (snapshots only).
    pub source_exists: Option<bool>,
    /// The AMIs of the account whose block devices use this snapshot.
    pub amis: Vec<String>,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// Whole days since creation.
    pub age_days: Option<i64>,
    /// The registered service whose tags the resource carries.
    pub service: Option<String>,
    /// Estimated monthly cost, from the price table.
    pub monthly_estimate: Option<Decimal>,
    /// The price the table lacks, when there is no estimate (`gp2 volumes in ap-south-2`).
    pub unpriced: Option<String>,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
}

/// Counts and estimated totals of an EBS report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbsSummary {
    /// Volumes in the report.
    pub volumes: usize,
    /// Snapshots in the report.
    pub snapshots: usize,
    /// GiB of all volumes.
    pub volume_gib: i64,
    /// GiB of all snapshots (their volumes' sizes).
    pub snapshot_gib: i64,
    /// Volumes by type.
    pub volumes_by_type: BTreeMap<String, usize>,
    /// Volumes by state.
    pub volumes_by_state: BTreeMap<String, usize>,
    /// Snapshots whose source volume is gone.
    pub snapshots_without_volume: usize,
    /// Estimated monthly cost of everything priced.
    pub estimated_monthly: Decimal,
    /// Estimated monthly cost by kind (`volume`, `snapshot`).
    pub estimated_monthly_by_kind: BTreeMap<String, Decimal>,
    /// Prices the table lacks, each once; the resources that need them are not in the
    /// totals.
    pub unpriced: Vec<String>,
    /// Where the prices come from.
    pub prices: Option<PriceSource>,
}

impl Tabular for EbsRow {
    fn counted() -> bool {
        false
    }

    fn noun() -> &'static str {
        "volumes and snapshots"
    }

    fn facets() -> Vec<&'static str> {
        vec!["kind", "type", "state", "region", "service"]
    }

    fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
        Some(("region", Some("kind")))
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "kind",
            "account",
            "region",
            "id",
            "type",
            "GiB",
            "state",
            "attached to / source",
            "AMIs",
            "age (days)",
            "service",
            "est. $/month",
            "tags",
        ]
    }

    fn cells(&self) -> Vec<String> {
        let link = if self.kind == "volume" {
            self.attached_to.join(", ")
        } else {
            match (&self.source_volume, self.source_exists) {
                (Some(volume), Some(false)) => format!("{volume} (gone)"),
                (Some(volume), _) => volume.clone(),
                (None, _) => String::new(),
            }
        };
        vec![
            self.kind.clone(),
            self.account.clone(),
            self.region.clone(),
            self.id.clone(),
            self.volume_type.clone(),
            self.size_gib.to_string(),
            self.state.clone(),
            link,
            self.amis.join(", "),
            self.age_days.map(|d| d.to_string()).unwrap_or_default(),
            self.service.clone().unwrap_or_default(),
            match (&self.monthly_estimate, &self.unpriced) {
                (Some(estimate), _) => estimate.to_string(),
                (None, Some(missing)) => format!("unpriced: {missing}"),
                (None, None) => String::new(),
            },
            self.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

/// What one account × region holds: its volumes, its own snapshots and the snapshots its
/// AMIs use.
#[derive(Debug, Default)]
pub struct Storage {
    /// Every volume.
    pub volumes: Vec<Volume>,
    /// Every snapshot the account owns.
    pub snapshots: Vec<Snapshot>,
    /// Snapshot id → the account's AMIs that use it.
    pub amis_by_snapshot: BTreeMap<String, Vec<String>>,
}

/// Reads the volumes, the account's snapshots and its AMIs of one account × region.
/// `snapshots` false skips the snapshots and AMIs.
pub async fn storage_in(part: &Part, snapshots: bool) -> Result<Storage, AwsError> {
    let client = super::part_client!(aws_sdk_ec2, &part);
    let mut storage = Storage::default();
    let mut pages = client
        .describe_volumes()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut cap = PageCap::new("ec2:DescribeVolumes");
    while let Some(page) = call("ec2:DescribeVolumes", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        storage.volumes.extend(page.volumes.unwrap_or_default());
    }
    if !snapshots {
        return Ok(storage);
    }
    let mut pages = client
        .describe_snapshots()
        .owner_ids("self")
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut cap = PageCap::new("ec2:DescribeSnapshots");
    while let Some(page) = call("ec2:DescribeSnapshots", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        // `self` is the caller's account; a snapshot of another owner (moto lists its public
        // AMIs' snapshots here) is not this account's storage.
        storage
            .snapshots
            .extend(page.snapshots.unwrap_or_default().into_iter().filter(|s| {
                s.owner_id
                    .as_deref()
                    .is_none_or(|owner| owner == part.account)
            }));
    }
    let images = call(
        "ec2:DescribeImages",
        client.describe_images().owners("self").send(),
    )
    .await?;
    for image in images.images.unwrap_or_default() {
        add_image(&mut storage.amis_by_snapshot, image);
    }
    Ok(storage)
}

fn add_image(amis_by_snapshot: &mut BTreeMap<String, Vec<String>>, image: Image) {
    let Some(id) = image.image_id else {
        return;
    };
    for mapping in image.block_device_mappings.unwrap_or_default() {
        if let Some(snapshot) = mapping.ebs.and_then(|ebs| ebs.snapshot_id) {
            amis_by_snapshot
                .entry(snapshot)
                .or_default()
                .push(id.clone());
        }
    }
}

/// Prices `estimate` into a row's two fields.
fn priced(estimate: Result<Decimal, String>) -> (Option<Decimal>, Option<String>) {
    match estimate {
        Ok(amount) => (Some(amount), None),
        Err(missing) => (None, Some(missing)),
    }
}

/// The row of one volume.
pub fn volume_row(
    part: &Part,
    volume: Volume,
    matcher: &ServiceMatcher,
    prices: &Prices,
    now: OffsetDateTime,
) -> EbsRow {
    let tags = tag_map(volume.tags);
    let volume_type = volume
        .volume_type
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    let size_gib = volume.size.map_or(0, i64::from);
    let created = volume.create_time.as_ref().and_then(to_time);
    let (monthly_estimate, unpriced) = priced(prices.volume(&part.region, &volume_type, size_gib));
    EbsRow {
        kind: "volume".into(),
        account: part.account.clone(),
        region: part.region.clone(),
        id: volume.volume_id.unwrap_or_default(),
        volume_type,
        size_gib,
        state: volume
            .state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        attached_to: volume
            .attachments
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| a.instance_id)
            .collect(),
        source_volume: None,
        source_exists: None,
        amis: Vec::new(),
        created,
        age_days: created.map(|t| (now - t).whole_days()),
        service: matcher.service_of(&tags).map(str::to_owned),
        monthly_estimate,
        unpriced,
        tags,
    }
}

/// The row of one snapshot; `volumes` are the ids of the part's volumes.
pub fn snapshot_row(
    part: &Part,
    snapshot: Snapshot,
    volumes: &BTreeSet<String>,
    amis_by_snapshot: &BTreeMap<String, Vec<String>>,
    matcher: &ServiceMatcher,
    prices: &Prices,
    now: OffsetDateTime,
) -> EbsRow {
    let tags = tag_map(snapshot.tags);
    let id = snapshot.snapshot_id.unwrap_or_default();
    let size_gib = snapshot.volume_size.map_or(0, i64::from);
    let created = snapshot.start_time.as_ref().and_then(to_time);
    // Snapshots copied or shared in have the placeholder volume `vol-ffffffff`.
    let source_volume = snapshot.volume_id.filter(|v| v != "vol-ffffffff");
    let source_exists = Some(source_volume.as_ref().is_some_and(|v| volumes.contains(v)));
    let (monthly_estimate, unpriced) = priced(prices.snapshot(&part.region, size_gib));
    EbsRow {
        kind: "snapshot".into(),
        account: part.account.clone(),
        region: part.region.clone(),
        amis: amis_by_snapshot.get(&id).cloned().unwrap_or_default(),
        id,
        volume_type: snapshot
            .storage_tier
            .map_or_else(|| "standard".to_owned(), |t| t.as_str().to_owned()),
        size_gib,
        state: snapshot
            .state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        attached_to: Vec::new(),
        source_volume,
        source_exists,
        created,
        age_days: created.map(|t| (now - t).whole_days()),
        service: matcher.service_of(&tags).map(str::to_owned),
        monthly_estimate,
        unpriced,
        tags,
    }
}

/// The rows of one part's storage.
pub fn rows_of(
    part: &Part,
    storage: Storage,
    query: &EbsQuery,
    matcher: &ServiceMatcher,
    prices: &Prices,
    now: OffsetDateTime,
) -> Vec<EbsRow> {
    let volume_ids: BTreeSet<String> = storage
        .volumes
        .iter()
        .filter_map(|v| v.volume_id.clone())
        .collect();
    let mut rows = Vec::new();
    if query.wants(EbsKind::Volumes) {
        rows.extend(
            storage
                .volumes
                .into_iter()
                .map(|v| volume_row(part, v, matcher, prices, now)),
        );
    }
    if query.wants(EbsKind::Snapshots) {
        rows.extend(storage.snapshots.into_iter().map(|s| {
            snapshot_row(
                part,
                s,
                &volume_ids,
                &storage.amis_by_snapshot,
                matcher,
                prices,
                now,
            )
        }));
    }
    rows.retain(|row| {
        tags_match(&query.tags, &row.tags)
            && query
                .service
                .as_ref()
                .is_none_or(|name| row.service.as_ref() == Some(name))
    });
    rows
}

/// Builds the EBS report: volumes and snapshots matching `query` in every selected
/// account × region, each priced from `prices`.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn storage_report(
    aws: &Aws,
    query: &EbsQuery,
    services: &ServiceMatcher,
    prices: &Prices,
    progress: &dyn Progress,
) -> Result<Report<EbsRow, EbsSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    // Each part's SDK pages become rows as soon as the part is read.
    let mut fan_out = aws
        .fan_out(&query.targets, progress, |part| async move {
            let storage = storage_in(&part, query.wants(EbsKind::Snapshots)).await?;
            Ok(rows_of(&part, storage, query, services, prices, now))
        })
        .await?;
    let mut rows = std::mem::take(&mut fan_out.rows);
    rows.sort_by(|a, b| {
        (&a.account, &a.region, &a.kind, &a.id).cmp(&(&b.account, &b.region, &b.kind, &b.id))
    });
    let mut summary = EbsSummary {
        prices: Some(prices.source()),
        ..EbsSummary::default()
    };
    let mut unpriced = BTreeSet::new();
    for row in &rows {
        if row.kind == "volume" {
            summary.volumes += 1;
            summary.volume_gib += row.size_gib;
            *summary
                .volumes_by_type
                .entry(row.volume_type.clone())
                .or_default() += 1;
            *summary
                .volumes_by_state
                .entry(row.state.clone())
                .or_default() += 1;
        } else {
            summary.snapshots += 1;
            summary.snapshot_gib += row.size_gib;
            summary.snapshots_without_volume += usize::from(row.source_exists == Some(false));
        }
        if let Some(amount) = row.monthly_estimate {
            summary.estimated_monthly += amount;
            *summary
                .estimated_monthly_by_kind
                .entry(row.kind.clone())
                .or_default() += amount;
        }
        if let Some(missing) = &row.unpriced {
            unpriced.insert(missing.clone());
        }
    }
    summary.unpriced = unpriced.into_iter().collect();
    let mut filters = BTreeMap::new();
    query.targets.describe(&mut filters);
    if !query.kinds.is_empty() {
        let kinds: Vec<&str> = query
            .kinds
            .iter()
            .map(|k| match k {
                EbsKind::Volumes => "volumes",
                EbsKind::Snapshots => "snapshots",
            })
            .collect();
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
        "aws.ebs",
        "EBS volumes and snapshots",
        filters,
        now,
        rows,
        summary,
    ))
}

impl Headline<EbsRow> for EbsSummary {
    fn figures(&self, _rows: &[EbsRow]) -> Vec<Figure> {
        let mut figures = vec![
            Figure::new("Volumes", number(self.volumes as f64, 0))
                .noted(format!("{} GiB", number(self.volume_gib as f64, 0))),
            Figure::new("Snapshots", number(self.snapshots as f64, 0))
                .noted(format!("{} GiB", number(self.snapshot_gib as f64, 0))),
            Figure::new("Estimated monthly", money(self.estimated_monthly, "USD")),
        ];
        if self.snapshots_without_volume > 0 {
            figures.push(Figure::new(
                "Snapshots of deleted volumes",
                number(self.snapshots_without_volume as f64, 0),
            ));
        }
        figures
    }
}
