//! The Lambda inventory report: every function of the selected accounts and regions, its
//! runtime flagged when AWS has deprecated it, and the total code storage.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::FunctionConfiguration;
use serde::{Deserialize, Serialize};
use time::macros::date;
use time::{Date, OffsetDateTime};

use super::{Aws, AwsError, PageCap, Part, Targets, call};
use crate::plugins::Progress;
use crate::report::{Report, Tabular};

/// Runtimes and the dates AWS deprecated them (or announced it will), from the Lambda
/// runtime documentation ("Deprecated runtimes" and "Supported runtimes"), as of 2026-11.
pub const RUNTIME_DEPRECATIONS: &[(&str, Date)] = &[
    ("nodejs", date!(2016 - 10 - 31)),
    ("nodejs4.3", date!(2020 - 03 - 05)),
    ("nodejs6.10", date!(2019 - 08 - 12)),
    ("nodejs8.10", date!(2020 - 03 - 06)),
    ("nodejs10.x", date!(2021 - 07 - 30)),
    ("nodejs12.x", date!(2023 - 03 - 31)),
    ("nodejs14.x", date!(2023 - 12 - 04)),
    ("nodejs16.x", date!(2024 - 06 - 12)),
    ("nodejs18.x", date!(2025 - 09 - 01)),
    ("python2.7", date!(2021 - 07 - 15)),
    ("python3.6", date!(2022 - 07 - 18)),
    ("python3.7", date!(2023 - 12 - 04)),
    ("python3.8", date!(2024 - 10 - 14)),
    ("python3.9", date!(2025 - 12 - 15)),
    ("ruby2.5", date!(2021 - 07 - 30)),
    ("ruby2.7", date!(2023 - 12 - 07)),
    ("ruby3.2", date!(2026 - 03 - 31)),
    ("java8", date!(2024 - 01 - 08)),
    ("go1.x", date!(2024 - 01 - 08)),
    ("provided", date!(2024 - 01 - 08)),
    ("dotnetcore1.0", date!(2019 - 07 - 30)),
    ("dotnetcore2.0", date!(2019 - 05 - 30)),
    ("dotnetcore2.1", date!(2022 - 01 - 05)),
    ("dotnetcore3.1", date!(2023 - 04 - 03)),
    ("dotnet5.0", date!(2022 - 05 - 10)),
    ("dotnet6", date!(2024 - 12 - 20)),
    ("dotnet7", date!(2024 - 05 - 14)),
];

/// When AWS deprecates (or deprecated) `runtime`, if it has said so.
pub fn deprecation_date(runtime: &str) -> Option<Date> {
    RUNTIME_DEPRECATIONS
        .iter()
        .find(|(name, _)| *name == runtime)
        .map(|(_, date)| *date)
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
        ]
    }
}

async fn functions_in(part: Part) -> Result<Vec<(Part, FunctionConfiguration)>, AwsError> {
    let client = aws_sdk_lambda::Client::new(&part.config);
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
        for function in page.functions.unwrap_or_default() {
            found.push((part.clone(), function));
        }
    }
    Ok(found)
}

fn row(part: &Part, f: FunctionConfiguration, today: Date) -> LambdaRow {
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
    }
}

/// Builds the Lambda report: functions matching `query` in every selected account × region.
#[tracing::instrument(skip_all, fields(accounts = ?query.targets.accounts, regions = ?query.targets.regions))]
pub async fn function_report(
    aws: &Aws,
    query: &LambdaQuery,
    progress: &dyn Progress,
) -> Result<Report<LambdaRow, LambdaSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    let mut fan_out = aws.fan_out(&query.targets, progress, functions_in).await?;
    let mut rows: Vec<LambdaRow> = std::mem::take(&mut fan_out.rows)
        .into_iter()
        .map(|(part, f)| row(&part, f, now.date()))
        .filter(|row| {
            (query.runtimes.is_empty() || query.runtimes.contains(&row.runtime))
                && (!query.deprecated_only || row.deprecated)
        })
        .collect();
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
    Ok(fan_out.into_report(
        "aws.lambda",
        "Lambda functions",
        filters,
        now,
        rows,
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecations_are_known_by_runtime() {
        assert_eq!(deprecation_date("python3.8"), Some(date!(2024 - 10 - 14)));
        assert_eq!(deprecation_date("python3.13"), None);
    }
}
