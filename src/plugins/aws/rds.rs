//! The RDS inventory report: every DB instance of the selected accounts and regions, with
//! the registered service it belongs to, and counts by engine and class plus total storage.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_rds::types::{DbInstance, Filter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Aws, AwsError, PageCap, Part, Power, ServiceMatcher, Switched, Targets, call, tags_match,
    to_time,
};
use crate::plugins::Progress;
use crate::plugins::observe;
use crate::plugins::sdk::describe_sdk_error;
use crate::report::{Figure, Headline, Report, Tabular, number};

/// Largest page DescribeDBInstances returns.
const PAGE_SIZE: i32 = 100;

/// What to include in an RDS report.
#[derive(Debug, Clone, Default)]
pub struct RdsQuery {
    /// Accounts and regions.
    pub targets: Targets,
    /// Only these DB instances (by identifier); identifiers that do not exist are left out,
    /// not an error.
    pub identifiers: Vec<String>,
    /// Only instances of one of these engines (`postgres`, `mysql`, …).
    pub engines: Vec<String>,
    /// Only instances with these tags (values of one key are alternatives; keys must all match).
    pub tags: Vec<(String, String)>,
    /// Only instances of this registered service.
    pub service: Option<String>,
}

/// One DB instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdsRow {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// DB instance identifier.
    pub identifier: String,
    /// Engine, e.g. `postgres`.
    pub engine: String,
    /// Engine version.
    pub engine_version: String,
    /// Instance class, e.g. `db.t3.micro`.
    pub class: String,
    /// Status, e.g. `available`.
    pub status: String,
    /// Whether a standby runs in another zone.
    pub multi_az: bool,
    /// The Aurora cluster the instance belongs to, if any (its power is the cluster's).
    pub cluster: Option<String>,
    /// Storage type, e.g. `gp3`.
    pub storage_type: String,
    /// Allocated storage in GiB.
    pub storage_gib: i64,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// The registered service whose tags the instance carries.
    pub service: Option<String>,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
}

/// Counts of an RDS report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdsSummary {
    /// Instances in the report.
    pub total: usize,
    /// Instances by engine.
    pub by_engine: BTreeMap<String, usize>,
    /// Instances by class.
    pub by_class: BTreeMap<String, usize>,
    /// Instances by region.
    pub by_region: BTreeMap<String, usize>,
    /// Multi-AZ instances.
    pub multi_az: usize,
    /// Allocated storage of all instances, GiB.
    pub storage_gib: i64,
}

impl Tabular for RdsRow {
    fn noun() -> &'static str {
        "databases"
    }

    fn facets() -> Vec<&'static str> {
        vec!["status", "engine", "class", "region", "service"]
    }

    fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
        Some(("region", Some("engine")))
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "account",
            "region",
            "identifier",
            "engine",
            "version",
            "class",
            "status",
            "multi-az",
            "storage",
            "GiB",
            "created",
            "service",
            "tags",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.account.clone(),
            self.region.clone(),
            self.identifier.clone(),
            self.engine.clone(),
            self.engine_version.clone(),
            self.class.clone(),
            self.status.clone(),
            if self.multi_az { "yes" } else { "no" }.into(),
            self.storage_type.clone(),
            self.storage_gib.to_string(),
            self.created
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            self.service.clone().unwrap_or_default(),
            self.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

pub(crate) async fn instances_in(
    part: Part,
    identifiers: Vec<String>,
) -> Result<Vec<(Part, DbInstance)>, AwsError> {
    let client = super::part_client!(aws_sdk_rds, &part);
    let filters = if identifiers.is_empty() {
        None
    } else {
        Some(vec![
            Filter::builder()
                .name("db-instance-id")
                .set_values(Some(identifiers))
                .build(),
        ])
    };
    let mut pages = client
        .describe_db_instances()
        .set_filters(filters)
        .max_records(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let mut cap = PageCap::new("rds:DescribeDBInstances");
    while let Some(page) = call("rds:DescribeDBInstances", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        for instance in page.db_instances.unwrap_or_default() {
            found.push((part.clone(), instance));
        }
    }
    Ok(found)
}

fn row(part: &Part, db: DbInstance, matcher: &ServiceMatcher) -> RdsRow {
    let tags: BTreeMap<String, String> = db
        .tag_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect();
    RdsRow {
        account: part.account.clone(),
        region: part.region.clone(),
        identifier: db.db_instance_identifier.unwrap_or_default(),
        engine: db.engine.unwrap_or_default(),
        engine_version: db.engine_version.unwrap_or_default(),
        class: db.db_instance_class.unwrap_or_default(),
        status: db.db_instance_status.unwrap_or_default(),
        multi_az: db.multi_az.unwrap_or(false),
        cluster: db.db_cluster_identifier,
        storage_type: db.storage_type.unwrap_or_default(),
        storage_gib: db.allocated_storage.map_or(0, i64::from),
        created: db.instance_create_time.as_ref().and_then(to_time),
        service: matcher.service_of(&tags).map(str::to_owned),
        tags,
    }
}

/// Builds the RDS report: DB instances matching `query` in every selected account × region.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn instance_report(
    aws: &Aws,
    query: &RdsQuery,
    services: &ServiceMatcher,
    progress: &dyn Progress,
) -> Result<Report<RdsRow, RdsSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    let mut fan_out = aws
        .fan_out(&query.targets, progress, |part| {
            instances_in(part, query.identifiers.clone())
        })
        .await?;
    let mut rows: Vec<RdsRow> = std::mem::take(&mut fan_out.rows)
        .into_iter()
        .map(|(part, db)| row(&part, db, services))
        .filter(|row| {
            (query.engines.is_empty() || query.engines.contains(&row.engine))
                && tags_match(&query.tags, &row.tags)
                && query
                    .service
                    .as_ref()
                    .is_none_or(|name| row.service.as_ref() == Some(name))
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.account, &a.region, &a.identifier).cmp(&(&b.account, &b.region, &b.identifier))
    });
    let mut summary = RdsSummary {
        total: rows.len(),
        ..RdsSummary::default()
    };
    for row in &rows {
        *summary.by_engine.entry(row.engine.clone()).or_default() += 1;
        *summary.by_class.entry(row.class.clone()).or_default() += 1;
        *summary.by_region.entry(row.region.clone()).or_default() += 1;
        summary.multi_az += usize::from(row.multi_az);
        summary.storage_gib += row.storage_gib;
    }
    let mut filters = BTreeMap::new();
    query.targets.describe(&mut filters);
    if !query.identifiers.is_empty() {
        filters.insert("ids".into(), query.identifiers.join(","));
    }
    if !query.engines.is_empty() {
        filters.insert("engine".into(), query.engines.join(","));
    }
    if !query.tags.is_empty() {
        let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        filters.insert("tag".into(), tags.join(","));
    }
    if let Some(name) = &query.service {
        filters.insert("service".into(), name.clone());
    }
    Ok(fan_out.into_report("aws.rds", "RDS DB instances", filters, now, rows, summary))
}

/// Stops or starts the DB instance `identifier` in the account and region of `config`
/// (`rds:StopDBInstance`, `rds:StartDBInstance`).
pub async fn switch(config: &SdkConfig, identifier: &str, power: Power) -> Switched {
    let client = aws_sdk_rds::Client::new(config);
    let result = match power {
        Power::Stop => observe(
            "aws",
            "rds:StopDBInstance",
            client
                .stop_db_instance()
                .db_instance_identifier(identifier)
                .send(),
        )
        .await
        .map(|out| out.db_instance)
        .map_err(|e| describe_sdk_error(&e)),
        Power::Start => observe(
            "aws",
            "rds:StartDBInstance",
            client
                .start_db_instance()
                .db_instance_identifier(identifier)
                .send(),
        )
        .await
        .map(|out| out.db_instance)
        .map_err(|e| describe_sdk_error(&e)),
    };
    match result {
        Ok(instance) => Switched::Changed(instance.and_then(|i| i.db_instance_status)),
        Err(reason) => Switched::Failed(reason),
    }
}

impl Headline<RdsRow> for RdsSummary {
    fn figures(&self, _rows: &[RdsRow]) -> Vec<Figure> {
        vec![
            Figure::new(
                "Storage",
                format!("{} GiB", number(self.storage_gib as f64, 0)),
            ),
            Figure::new("Multi-AZ", number(self.multi_az as f64, 0)),
        ]
    }
}
