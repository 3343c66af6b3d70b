//! The EC2 inventory report: every instance of the selected accounts and regions, with the
//! registered service it belongs to, and counts by state, type and region.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Instance};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use aws_config::SdkConfig;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{
    Aws, AwsError, PageCap, Part, Power, ServiceMatcher, Switched, Targets, call, to_time,
};
use crate::plugins::Progress;
use crate::plugins::observe;
use crate::plugins::sdk::describe_sdk_error;
use crate::report::{Headline, Report, Tabular};

/// Largest page DescribeInstances returns.
const PAGE_SIZE: i32 = 1000;

/// What to include in an EC2 report.
#[derive(Debug, Clone, Default)]
pub struct Ec2Query {
    /// Accounts and regions.
    pub targets: Targets,
    /// Only these instances (by id); ids that do not exist are left out, not an error.
    pub ids: Vec<String>,
    /// Only instances in one of these states (`running`, `stopped`, …).
    pub states: Vec<String>,
    /// Only instances with these tags (values of one key are alternatives; keys must all match).
    pub tags: Vec<(String, String)>,
    /// Only instances of one of these types.
    pub types: Vec<String>,
    /// Only instances of this registered service (its name and tags).
    pub service: Option<(String, BTreeMap<String, String>)>,
    /// Include every tag of every instance.
    pub include_tags: bool,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Row {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Instance id.
    pub instance_id: String,
    /// The `Name` tag.
    pub name: Option<String>,
    /// State: pending, running, stopping, stopped, shutting-down, terminated.
    pub state: String,
    /// Instance type, e.g. `t3.micro`.
    pub instance_type: String,
    /// `on-demand`, `spot`, `scheduled` or `capacity-block`.
    pub lifecycle: String,
    /// Launch time (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub launch_time: Option<OffsetDateTime>,
    /// Whole days since launch, at the report's time.
    pub age_days: Option<i64>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Private IPv4 address.
    pub private_ip: Option<String>,
    /// Public IPv4 address.
    pub public_ip: Option<String>,
    /// Platform, e.g. `Linux/UNIX` or `Windows`.
    pub platform: String,
    /// The registered service whose tags the instance carries.
    pub service: Option<String>,
    /// Every tag, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Counts of an EC2 report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Summary {
    /// Instances in the report.
    pub total: usize,
    /// Instances by state.
    pub by_state: BTreeMap<String, usize>,
    /// Instances by type.
    pub by_type: BTreeMap<String, usize>,
    /// Instances by region.
    pub by_region: BTreeMap<String, usize>,
}

impl Ec2Summary {
    /// Counts `rows`.
    pub fn of(rows: &[Ec2Row]) -> Self {
        let mut summary = Self::default();
        for row in rows {
            summary.add(row);
        }
        summary
    }

    /// Counts one more row.
    pub fn add(&mut self, row: &Ec2Row) {
        self.total += 1;
        *self.by_state.entry(row.state.clone()).or_default() += 1;
        *self.by_type.entry(row.instance_type.clone()).or_default() += 1;
        *self.by_region.entry(row.region.clone()).or_default() += 1;
    }
}

impl Tabular for Ec2Row {
    fn noun() -> &'static str {
        "instances"
    }

    fn facets() -> Vec<&'static str> {
        vec!["state", "type", "region", "service"]
    }

    fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
        Some(("region", Some("state")))
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "account",
            "region",
            "instance",
            "name",
            "state",
            "type",
            "lifecycle",
            "launched",
            "age (days)",
            "az",
            "private ip",
            "public ip",
            "platform",
            "service",
            "tags",
        ]
    }

    fn cells(&self) -> Vec<String> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.account.clone(),
            self.region.clone(),
            self.instance_id.clone(),
            text(&self.name),
            self.state.clone(),
            self.instance_type.clone(),
            self.lifecycle.clone(),
            self.launch_time
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            self.age_days.map(|d| d.to_string()).unwrap_or_default(),
            text(&self.availability_zone),
            text(&self.private_ip),
            text(&self.public_ip),
            self.platform.clone(),
            text(&self.service),
            self.tags
                .as_ref()
                .map(|tags| {
                    tags.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ]
    }
}

fn filters(query: &Ec2Query) -> Vec<Filter> {
    let mut filters = Vec::new();
    if !query.ids.is_empty() {
        filters.push(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(query.ids.clone()))
                .build(),
        );
    }
    if !query.states.is_empty() {
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(query.states.clone()))
                .build(),
        );
    }
    if !query.types.is_empty() {
        filters.push(
            Filter::builder()
                .name("instance-type")
                .set_values(Some(query.types.clone()))
                .build(),
        );
    }
    let mut by_key: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (k, v) in &query.tags {
        by_key.entry(k).or_default().push(v.clone());
    }
    if let Some((_, tags)) = &query.service {
        for (k, v) in tags {
            by_key.entry(k).or_default().push(v.clone());
        }
    }
    for (key, values) in by_key {
        filters.push(
            Filter::builder()
                .name(format!("tag:{key}"))
                .set_values(Some(values))
                .build(),
        );
    }
    filters
}

/// Reads every instance of one account × region, page by page, keeping what `keep` makes of
/// each: a page is dropped as soon as it is mapped, so no SDK response outlives its page.
pub(crate) async fn instances_in<T>(
    part: &Part,
    filters: Vec<Filter>,
    mut keep: impl FnMut(Instance) -> Option<T>,
) -> Result<Vec<T>, AwsError> {
    let client = super::part_client!(aws_sdk_ec2, &part);
    let mut pages = client
        .describe_instances()
        .set_filters((!filters.is_empty()).then_some(filters))
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let mut cap = PageCap::new("ec2:DescribeInstances");
    while let Some(page) = call("ec2:DescribeInstances", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        for reservation in page.reservations.unwrap_or_default() {
            found.extend(
                reservation
                    .instances
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(&mut keep),
            );
        }
    }
    Ok(found)
}

/// The tags of an EC2 resource (instance, volume, snapshot, address) as a map.
pub fn tag_map(tags: Option<Vec<aws_sdk_ec2::types::Tag>>) -> BTreeMap<String, String> {
    tags.unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

fn row(
    part: &Part,
    instance: Instance,
    matcher: &ServiceMatcher,
    now: OffsetDateTime,
    include_tags: bool,
) -> Ec2Row {
    let tags = tag_map(instance.tags);
    let launch_time = instance.launch_time.as_ref().and_then(to_time);
    let platform = instance
        .platform_details
        .or_else(|| instance.platform.map(|p| p.as_str().to_owned()))
        .unwrap_or_else(|| "Linux/UNIX".into());
    Ec2Row {
        account: part.account.clone(),
        region: part.region.clone(),
        instance_id: instance.instance_id.unwrap_or_default(),
        name: tags.get("Name").cloned(),
        state: instance
            .state
            .and_then(|s| s.name)
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        instance_type: instance
            .instance_type
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        lifecycle: instance
            .instance_lifecycle
            .map_or_else(|| "on-demand".to_owned(), |l| l.as_str().to_owned()),
        launch_time,
        age_days: launch_time.map(|t| (now - t).whole_days()),
        availability_zone: instance.placement.and_then(|p| p.availability_zone),
        private_ip: instance.private_ip_address,
        public_ip: instance.public_ip_address,
        platform,
        service: matcher.service_of(&tags).map(str::to_owned),
        tags: include_tags.then_some(tags),
    }
}

/// Builds the EC2 report: instances matching `query` in every selected account × region,
/// each matched to a registered service of `services`.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn instance_report(
    aws: &Aws,
    query: &Ec2Query,
    services: &ServiceMatcher,
    progress: &dyn Progress,
) -> Result<Report<Ec2Row, Ec2Summary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    let server_filters = filters(query);
    // When rows stream out, only their counts stay here.
    let streamed = std::sync::Mutex::new(Ec2Summary::default());
    let mut fan_out = aws
        .fan_out(&query.targets, progress, |part| {
            let filters = server_filters.clone();
            let streamed = &streamed;
            async move {
                let rows = instances_in(&part, filters, |instance| {
                    let row = row(&part, instance, services, now, query.include_tags);
                    let wanted = query
                        .service
                        .as_ref()
                        .is_none_or(|(name, _)| row.service.as_deref() == Some(name));
                    wanted.then_some(row)
                })
                .await?;
                if !progress.streams() {
                    return Ok(rows);
                }
                if let Ok(mut summary) = streamed.lock() {
                    rows.iter().for_each(|row| summary.add(row));
                }
                // A page's worth at a time: a row as a JSON tree is several times its size.
                for chunk in rows.chunks(PAGE_SIZE as usize) {
                    progress.stream(
                        chunk
                            .iter()
                            .filter_map(|row| serde_json::to_value(row).ok())
                            .collect(),
                    );
                }
                Ok(Vec::new())
            }
        })
        .await?;
    let mut rows: Vec<Ec2Row> = std::mem::take(&mut fan_out.rows);
    rows.sort_by(|a, b| {
        (&a.account, &a.region, &a.instance_id).cmp(&(&b.account, &b.region, &b.instance_id))
    });
    let mut scope_filters = BTreeMap::new();
    query.targets.describe(&mut scope_filters);
    let join = |v: &[String]| v.join(",");
    if !query.ids.is_empty() {
        scope_filters.insert("ids".into(), join(&query.ids));
    }
    if !query.states.is_empty() {
        scope_filters.insert("state".into(), join(&query.states));
    }
    if !query.types.is_empty() {
        scope_filters.insert("type".into(), join(&query.types));
    }
    if !query.tags.is_empty() {
        let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        scope_filters.insert("tag".into(), join(&tags));
    }
    if let Some((name, _)) = &query.service {
        scope_filters.insert("service".into(), name.clone());
    }
    let summary = if progress.streams() {
        streamed.into_inner().unwrap_or_default()
    } else {
        Ec2Summary::of(&rows)
    };
    Ok(fan_out.into_report(
        "aws.ec2",
        "EC2 instances",
        scope_filters,
        now,
        rows,
        summary,
    ))
}

/// Stops or starts `ids` in the account and region of `config` (`ec2:StopInstances`,
/// `ec2:StartInstances`), one call for all of them; when that call fails, each instance is
/// tried alone so that every failure is its own. With `dry_run`, AWS checks the permission and
/// the instances and changes nothing.
pub async fn switch(
    config: &SdkConfig,
    ids: &[String],
    power: Power,
    dry_run: bool,
) -> Vec<(String, Switched)> {
    let client = aws_sdk_ec2::Client::new(config);
    match switch_batch(&client, ids, power, dry_run).await {
        Ok(done) => done,
        Err(_) if ids.len() > 1 => {
            let mut done = Vec::with_capacity(ids.len());
            for id in ids {
                let one = std::slice::from_ref(id);
                match switch_batch(&client, one, power, dry_run).await {
                    Ok(mut result) => done.append(&mut result),
                    Err(reason) => done.push((id.clone(), Switched::Failed(reason))),
                }
            }
            done
        }
        Err(reason) => ids
            .iter()
            .map(|id| (id.clone(), Switched::Failed(reason.clone())))
            .collect(),
    }
}

/// One StopInstances or StartInstances call. `DryRunOperation` is AWS's "allowed".
async fn switch_batch(
    client: &aws_sdk_ec2::Client,
    ids: &[String],
    power: Power,
    dry_run: bool,
) -> Result<Vec<(String, Switched)>, String> {
    let list = Some(ids.to_vec());
    let changes = match power {
        Power::Stop => observe(
            "aws",
            "ec2:StopInstances",
            client
                .stop_instances()
                .set_instance_ids(list.clone())
                .dry_run(dry_run)
                .send(),
        )
        .await
        .map(|out| out.stopping_instances.unwrap_or_default())
        .map_err(|e| failure(&e)),
        Power::Start => observe(
            "aws",
            "ec2:StartInstances",
            client
                .start_instances()
                .set_instance_ids(list.clone())
                .dry_run(dry_run)
                .send(),
        )
        .await
        .map(|out| out.starting_instances.unwrap_or_default())
        .map_err(|e| failure(&e)),
    };
    match changes {
        Ok(changes) => Ok(changes
            .into_iter()
            .filter_map(|change| {
                let state = change
                    .current_state
                    .and_then(|s| s.name)
                    .map(|n| n.as_str().to_owned());
                Some((change.instance_id?, Switched::Changed(state)))
            })
            .collect()),
        Err((Some(code), _)) if code == "DryRunOperation" => Ok(ids
            .iter()
            .map(|id| (id.clone(), Switched::Allowed))
            .collect()),
        Err((_, reason)) => Err(reason),
    }
}

/// An SDK error's AWS error code, and its description.
fn failure<E>(e: &SdkError<E, HttpResponse>) -> (Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    (e.code().map(str::to_owned), describe_sdk_error(e))
}

impl Headline<Ec2Row> for Ec2Summary {}
