//! The Lambda inventory report: every function of the selected accounts and regions, its
//! runtime flagged when AWS has deprecated it, and the total code storage.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aws_sdk_lambda::types::FunctionConfiguration;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Aws, AwsError, PageCap, Part, ServiceMatcher, Targets, call, tags_match};
use crate::plugins::Progress;
use crate::report::{Figure, Headline, Report, Tabular, number};

/// The runtime deprecation table shipped with pincher (`runtimes.toml`).
const RUNTIMES: &str = include_str!("runtimes.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeTable {
    #[allow(dead_code, reason = "documentation of the data, checked to be present")]
    source: String,
    #[allow(dead_code, reason = "documentation of the data, checked to be present")]
    as_of: String,
    deprecated: BTreeMap<String, toml::value::Datetime>,
}

/// Runtime → the date AWS deprecated it (or announced it will), from `runtimes.toml`. The
/// file is compiled in and checked by a test, so a bad entry cannot ship; an entry that still
/// fails to read is left out (and the runtime taken as supported).
static DEPRECATIONS: LazyLock<BTreeMap<String, Date>> = LazyLock::new(|| {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    toml::from_str::<RuntimeTable>(RUNTIMES)
        .map(|table| {
            table
                .deprecated
                .into_iter()
                .filter_map(|(runtime, date)| {
                    Some((runtime, Date::parse(&date.to_string(), &format).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
});

/// When AWS deprecates (or deprecated) `runtime`, if it has said so.
pub fn deprecation_date(runtime: &str) -> Option<Date> {
    DEPRECATIONS.get(runtime).copied()
}

/// What to include in a Lambda report.
#[derive(Debug, Clone, Default)]
pub struct LambdaQuery {
    /// Accounts and regions.
    pub targets: Targets,
    /// Only functions on one of these runtimes.
    pub runtimes: Vec<String>,
    /// Only functions on deprecated runtimes.
    pub deprecated_only: bool,
    /// Only functions with these tags (values of one key are alternatives; keys must all
    /// match).
    pub tags: Vec<(String, String)>,
    /// Only the functions of this registered service.
    pub service: Option<String>,
}

/// One function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaRow {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Function name.
    pub name: String,
    /// Runtime (empty for container images).
    pub runtime: String,
    /// Whether the runtime is past its AWS deprecation date.
    pub deprecated: bool,
    /// The runtime's deprecation date, past or announced.
    pub deprecation_date: Option<Date>,
    /// Memory in MB.
    pub memory_mb: i32,
    /// Timeout in seconds.
    pub timeout_secs: i32,
    /// Deployment package size in bytes.
    pub code_size_bytes: i64,
    /// Last modification, as AWS reports it (ISO 8601).
    pub last_modified: String,
    /// Architectures, e.g. `x86_64`, `arm64`.
    pub architecture: String,
    /// The registered service whose tags the function carries.
    pub service: Option<String>,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
}

/// Counts of a Lambda report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaSummary {
    /// Functions in the report.
    pub total: usize,
    /// Functions on deprecated runtimes.
    pub deprecated: usize,
    /// Functions by runtime.
    pub by_runtime: BTreeMap<String, usize>,
    /// Functions by region.
    pub by_region: BTreeMap<String, usize>,
    /// Code storage of all functions in bytes (the latest versions).
    pub code_storage_bytes: i64,
}

impl Tabular for LambdaRow {
    fn noun() -> &'static str {
        "functions"
    }

    fn facets() -> Vec<&'static str> {
        vec!["runtime", "deprecated", "region", "service"]
    }

    fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
        Some(("runtime", Some("region")))
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "account",
            "region",
            "function",
            "runtime",
            "deprecated",
            "memory (MB)",
            "timeout (s)",
            "code (bytes)",
            "last modified",
            "architecture",
            "service",
            "tags",
        ]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.account.clone(),
            self.region.clone(),
            self.name.clone(),
            self.runtime.clone(),
            match (self.deprecated, self.deprecation_date) {
                (true, Some(date)) => format!("yes, since {date}"),
                (false, Some(date)) => format!("on {date}"),
                _ => "no".into(),
            },
            self.memory_mb.to_string(),
            self.timeout_secs.to_string(),
            self.code_size_bytes.to_string(),
            self.last_modified.clone(),
            self.architecture.clone(),
            self.service.clone().unwrap_or_default(),
            self.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

/// Functions whose tags are read at once in one account × region.
const TAG_READS: usize = 8;

/// Reads every function of one account × region with its tags (`lambda:ListTags` per
/// function: ListFunctions does not return them).
pub(crate) async fn functions_in(part: Part) -> Result<Vec<Function>, AwsError> {
    let client = super::part_client!(aws_sdk_lambda, &part);
    let mut pages = client
        .list_functions()
        .max_items(50)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    let mut cap = PageCap::new("lambda:ListFunctions");
    while let Some(page) = call("lambda:ListFunctions", async {
        pages.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        found.extend(page.functions.unwrap_or_default());
    }
    futures::stream::iter(found.into_iter().map(|configuration| {
        let client = &client;
        async move {
            let tags = match configuration.function_arn.as_deref() {
                Some(arn) => call("lambda:ListTags", client.list_tags().resource(arn).send())
                    .await?
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                None => BTreeMap::new(),
            };
            Ok(Function {
                configuration,
                tags,
            })
        }
    }))
    .buffered(TAG_READS)
    .collect::<Vec<Result<Function, AwsError>>>()
    .await
    .into_iter()
    .collect()
}

/// A function as read: its configuration and its tags.
#[derive(Debug)]
pub(crate) struct Function {
    /// What ListFunctions returned.
    pub configuration: FunctionConfiguration,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

fn row(part: &Part, function: Function, today: Date, matcher: &ServiceMatcher) -> LambdaRow {
    let Function {
        configuration: f,
        tags,
    } = function;
    let runtime = f.runtime.map(|r| r.as_str().to_owned()).unwrap_or_default();
    let deprecation_date = deprecation_date(&runtime);
    LambdaRow {
        account: part.account.clone(),
        region: part.region.clone(),
        name: f.function_name.unwrap_or_default(),
        deprecated: deprecation_date.is_some_and(|d| d <= today),
        deprecation_date,
        runtime,
        memory_mb: f.memory_size.unwrap_or_default(),
        timeout_secs: f.timeout.unwrap_or_default(),
        code_size_bytes: f.code_size,
        last_modified: f.last_modified.unwrap_or_default(),
        architecture: f
            .architectures
            .unwrap_or_default()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect::<Vec<_>>()
            .join(","),
        service: matcher.service_of(&tags).map(str::to_owned),
        tags,
    }
}

/// Builds the Lambda report: functions matching `query` in every selected account × region.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn function_report(
    aws: &Aws,
    query: &LambdaQuery,
    services: &ServiceMatcher,
    progress: &dyn Progress,
) -> Result<Report<LambdaRow, LambdaSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    let mut fan_out = aws
        .fan_out(&query.targets, progress, |part| async move {
            let functions = functions_in(part.clone()).await?;
            Ok(functions
                .into_iter()
                .map(|f| row(&part, f, now.date(), services))
                .filter(|row| {
                    (query.runtimes.is_empty() || query.runtimes.contains(&row.runtime))
                        && (!query.deprecated_only || row.deprecated)
                        && tags_match(&query.tags, &row.tags)
                        && query
                            .service
                            .as_ref()
                            .is_none_or(|name| row.service.as_ref() == Some(name))
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let mut rows: Vec<LambdaRow> = std::mem::take(&mut fan_out.rows);
    rows.sort_by(|a, b| (&a.account, &a.region, &a.name).cmp(&(&b.account, &b.region, &b.name)));
    let mut summary = LambdaSummary {
        total: rows.len(),
        ..LambdaSummary::default()
    };
    for row in &rows {
        summary.deprecated += usize::from(row.deprecated);
        *summary.by_runtime.entry(row.runtime.clone()).or_default() += 1;
        *summary.by_region.entry(row.region.clone()).or_default() += 1;
        summary.code_storage_bytes += row.code_size_bytes;
    }
    let mut filters = BTreeMap::new();
    query.targets.describe(&mut filters);
    if !query.runtimes.is_empty() {
        filters.insert("runtime".into(), query.runtimes.join(","));
    }
    if query.deprecated_only {
        filters.insert("deprecated".into(), "true".into());
    }
    if !query.tags.is_empty() {
        let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        filters.insert("tag".into(), tags.join(","));
    }
    if let Some(name) = &query.service {
        filters.insert("service".into(), name.clone());
    }
    Ok(fan_out.into_report(
        "aws.lambda",
        "Lambda functions",
        filters,
        now,
        rows,
        summary,
    ))
}

impl Headline<LambdaRow> for LambdaSummary {
    fn figures(&self, _rows: &[LambdaRow]) -> Vec<Figure> {
        vec![
            Figure::new("On deprecated runtimes", number(self.deprecated as f64, 0)),
            Figure::new(
                "Code stored",
                format!(
                    "{} MiB",
                    number(self.code_storage_bytes as f64 / 1_048_576.0, 1)
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use time::macros::date;

    #[test]
    fn deprecations_are_read_from_the_data_file() {
        assert_eq!(deprecation_date("python3.8"), Some(date!(2024 - 10 - 14)));
        assert_eq!(deprecation_date("nodejs18.x"), Some(date!(2025 - 09 - 01)));
        assert_eq!(deprecation_date("python3.13"), None);
    }

    #[test]
    fn every_entry_of_the_data_file_is_a_date() {
        let table: RuntimeTable = toml::from_str(RUNTIMES).expect("runtimes.toml");
        assert!(!table.source.is_empty() && !table.as_of.is_empty());
        assert!(table.deprecated.len() >= 20);
        assert_eq!(
            DEPRECATIONS.len(),
            table.deprecated.len(),
            "every entry is a plain date (YYYY-MM-DD)"
        );
    }
}
