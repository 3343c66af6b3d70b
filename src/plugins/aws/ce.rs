//! The Cost Explorer report: cost for a period by time and group (service, account, region,
//! a tag or the registered services), its change against the previous period of the same
//! length, the top movers and an optional forecast. Amounts are decimals with their currency.

use std::collections::BTreeMap;
use std::str::FromStr;

use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity as CeGranularity, GroupDefinition, GroupDefinitionType,
    Metric, TagValues,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime};

use super::{Aws, AwsError, PageCap, call};
use crate::plugins::Progress;
use crate::report::{
    Chart, Figure, Headline, Period, Report, ReportError, Scope, Series, Tabular, money,
    signed_money,
};

/// How many groups the summary lists as top movers.
pub const TOP_MOVERS: usize = 5;

/// The metrics Cost Explorer reports.
pub const METRICS: &[&str] = &[
    "AmortizedCost",
    "BlendedCost",
    "NetAmortizedCost",
    "NetUnblendedCost",
    "NormalizedUsageAmount",
    "UnblendedCost",
    "UsageQuantity",
];

/// Time buckets of a cost report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One bucket per day.
    Daily,
    /// One bucket per calendar month.
    #[default]
    Monthly,
}

impl Granularity {
    /// Parses `daily` or `monthly`.
    pub fn parse(s: &str) -> Result<Self, AwsError> {
        match s.to_ascii_lowercase().as_str() {
            "daily" => Ok(Self::Daily),
            "monthly" => Ok(Self::Monthly),
            _ => Err(AwsError::Invalid(format!(
                "granularity {s:?}: expected daily or monthly"
            ))),
        }
    }

    fn api(self) -> CeGranularity {
        match self {
            Self::Daily => CeGranularity::Daily,
            Self::Monthly => CeGranularity::Monthly,
        }
    }
}

/// What costs are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// AWS service (`SERVICE` dimension).
    Service,
    /// Linked account (`LINKED_ACCOUNT` dimension).
    Account,
    /// Region (`REGION` dimension).
    Region,
    /// A cost-allocation tag.
    Tag(String),
    /// The registered services, each by all of its tags.
    RegisteredService,
}

impl GroupBy {
    /// Parses `service`, `account`, `region`, `tag:KEY` or `registered-service`.
    pub fn parse(s: &str) -> Result<Self, AwsError> {
        match s {
            "service" => Ok(Self::Service),
            "account" => Ok(Self::Account),
            "region" => Ok(Self::Region),
            "registered-service" | "registered_service" => Ok(Self::RegisteredService),
            _ => match s.strip_prefix("tag:") {
                Some(key) if !key.is_empty() => Ok(Self::Tag(key.to_owned())),
                _ => Err(AwsError::Invalid(format!(
                    "group-by {s:?}: expected service, account, region, tag:KEY or registered-service"
                ))),
            },
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Service => "service".into(),
            Self::Account => "account".into(),
            Self::Region => "region".into(),
            Self::Tag(key) => format!("tag:{key}"),
            Self::RegisteredService => "registered-service".into(),
        }
    }
}

/// What a cost report covers.
#[derive(Debug, Clone)]
pub struct CeQuery {
    /// The period, `[start, end)`.
    pub period: Period,
    /// Time buckets.
    pub granularity: Granularity,
    /// One of [`METRICS`].
    pub metric: String,
    /// Grouping, if any.
    pub group_by: Option<GroupBy>,
    /// Also forecast the rest of the current month.
    pub forecast: bool,
}

impl CeQuery {
    /// Checks the metric and the period.
    pub fn validate(&self) -> Result<(), AwsError> {
        if !METRICS.contains(&self.metric.as_str()) {
            return Err(AwsError::Invalid(format!(
                "metric {:?}: expected one of {}",
                self.metric,
                METRICS.join(", ")
            )));
        }
        if self.period.start >= self.period.end {
            return Err(AwsError::Invalid(format!(
                "the period must end after it starts ({} to {})",
                self.period.start, self.period.end
            )));
        }
        Ok(())
    }
}

/// The default period on `today`: the last full month and the current month to date.
pub fn default_period(today: Date) -> Period {
    let this_month = today.replace_day(1).unwrap_or(today);
    let start = (this_month - Duration::days(1))
        .replace_day(1)
        .unwrap_or(this_month);
    let end = if today == this_month {
        this_month
    } else {
        today
    };
    Period { start, end }
}

/// The last full month before `today`.
pub fn last_full_month(today: Date) -> Period {
    let end = today.replace_day(1).unwrap_or(today);
    let start = (end - Duration::days(1)).replace_day(1).unwrap_or(end);
    Period { start, end }
}

/// What Cost Explorer says was billed in a period: every service and account the caller's
/// bill covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billed {
    /// The period.
    pub period: Period,
    /// The metric, `UnblendedCost`.
    pub metric: String,
    /// The total.
    pub amount: Decimal,
    /// Its currency.
    pub unit: String,
    /// Whether Cost Explorer marks any of it as estimated (not final).
    pub estimated: bool,
}

/// The total billed in `period` (`UnblendedCost`, one `ce:GetCostAndUsage` call per page).
/// A period Cost Explorer has no data for is an error, never a zero.
pub async fn billed_total(aws: &Aws, period: Period) -> Result<Billed, AwsError> {
    const METRIC: &str = "UnblendedCost";
    let client = aws_sdk_costexplorer::Client::new(aws.home_config());
    let query = CeQuery {
        period,
        granularity: Granularity::Monthly,
        metric: METRIC.into(),
        group_by: None,
        forecast: false,
    };
    let rows = cost_rows(&client, &query, period, None, None, UNGROUPED).await?;
    let Some(first) = rows.first() else {
        return Err(AwsError::Unreadable(format!(
            "Cost Explorer has no {METRIC} for {} to {}",
            period.start, period.end
        )));
    };
    Ok(Billed {
        period,
        metric: METRIC.into(),
        unit: first.unit.clone(),
        amount: rows.iter().map(|r| r.amount).sum(),
        estimated: rows.iter().any(|r| r.estimated),
    })
}

/// The period of the same length just before `period`.
pub fn previous_period(period: Period) -> Period {
    let first = |d: Date| d.day() == 1;
    if first(period.start) && first(period.end) {
        let months = months_between(period.start, period.end);
        return Period {
            start: add_months(period.start, -months),
            end: period.start,
        };
    }
    let length = period.end - period.start;
    Period {
        start: period.start - length,
        end: period.start,
    }
}

fn months_between(start: Date, end: Date) -> i32 {
    (end.year() - start.year()) * 12 + (end.month() as i32 - start.month() as i32)
}

/// The first day of the month `months` after (or before, when negative) the month of `date`.
pub fn add_months(date: Date, months: i32) -> Date {
    let index = date.year() * 12 + (date.month() as i32 - 1) + months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .unwrap_or(Month::January);
    Date::from_calendar_date(year, month, 1).unwrap_or(date)
}

/// One group's cost in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRow {
    /// First day of the bucket.
    pub start: Date,
    /// First day after the bucket.
    pub end: Date,
    /// The group (`total` when ungrouped).
    pub group: String,
    /// The amount, exactly as Cost Explorer reports it.
    pub amount: Decimal,
    /// Its currency or unit, e.g. `USD`.
    pub unit: String,
    /// Whether AWS still estimates the bucket.
    pub estimated: bool,
}

impl Tabular for CostRow {
    fn counted() -> bool {
        false
    }

    fn noun() -> &'static str {
        "cost entries"
    }

    fn columns() -> Vec<&'static str> {
        vec!["start", "end", "group", "amount", "unit", "estimated"]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.start.to_string(),
            self.end.to_string(),
            self.group.clone(),
            self.amount.to_string(),
            self.unit.clone(),
            if self.estimated { "yes" } else { "no" }.into(),
        ]
    }
}

/// A group whose cost changed most against the previous period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mover {
    /// The group.
    pub group: String,
    /// Its cost in the period.
    pub current: Decimal,
    /// Its cost in the previous period.
    pub previous: Decimal,
    /// `current - previous`.
    pub change: Decimal,
}

/// The forecast of the rest of the current month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// First forecast day.
    pub start: Date,
    /// First day after the forecast.
    pub end: Date,
    /// Forecast amount.
    pub amount: Decimal,
    /// Its currency.
    pub unit: String,
}

/// Totals of a cost report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostSummary {
    /// The metric.
    pub metric: String,
    /// The currency or unit of every amount.
    pub unit: String,
    /// Total of the period.
    pub total: Decimal,
    /// The previous period of the same length.
    pub previous_period: Period,
    /// Total of the previous period (absent when it could not be read).
    pub previous_total: Option<Decimal>,
    /// `total - previous_total`.
    pub change: Option<Decimal>,
    /// The change in percent of the previous total, to two places.
    pub change_percent: Option<Decimal>,
    /// Total of each group in the period.
    pub by_group: BTreeMap<String, Decimal>,
    /// Groups with the largest absolute change, largest first.
    pub top_movers: Vec<Mover>,
    /// Forecast, when asked for and available.
    pub forecast: Option<Forecast>,
}

const UNGROUPED: &str = "total";

fn parse_date(s: &str) -> Result<Date, AwsError> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| AwsError::Invalid(format!("Cost Explorer returned the date {s:?}: {e}")))
}

fn amount(value: &aws_sdk_costexplorer::types::MetricValue) -> Result<(Decimal, String), AwsError> {
    let text = value.amount.as_deref().unwrap_or("0");
    let amount = Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|e| {
            AwsError::Invalid(format!("Cost Explorer returned the amount {text:?}: {e}"))
        })?;
    Ok((amount, value.unit.clone().unwrap_or_default()))
}

fn group_name(group_by: &GroupBy, key: &str) -> String {
    match group_by {
        GroupBy::Tag(_) => match key.split_once('$') {
            Some((_, "")) => "(untagged)".into(),
            Some((_, value)) => value.to_owned(),
            None => key.to_owned(),
        },
        _ => key.to_owned(),
    }
}

fn tag_filter(tags: &BTreeMap<String, String>) -> Option<Expression> {
    let mut parts: Vec<Expression> = tags
        .iter()
        .map(|(k, v)| {
            Expression::builder()
                .tags(TagValues::builder().key(k).values(v).build())
                .build()
        })
        .collect();
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Expression::builder().set_and(Some(parts)).build()),
    }
}

/// Reads one period, every page, as rows named by `label` when there is no grouping.
async fn cost_rows(
    client: &aws_sdk_costexplorer::Client,
    query: &CeQuery,
    period: Period,
    grouping: Option<GroupDefinition>,
    filter: Option<Expression>,
    label: &str,
) -> Result<Vec<CostRow>, AwsError> {
    let interval = DateInterval::builder()
        .start(period.start.to_string())
        .end(period.end.to_string())
        .build()
        .map_err(|e| AwsError::Invalid(e.to_string()))?;
    let group_by = query.group_by.clone();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    let mut cap = PageCap::new("ce:GetCostAndUsage");
    loop {
        cap.count()?;
        let output = call(
            "ce:GetCostAndUsage",
            client
                .get_cost_and_usage()
                .time_period(interval.clone())
                .granularity(query.granularity.api())
                .metrics(&query.metric)
                .set_group_by(grouping.clone().map(|g| vec![g]))
                .set_filter(filter.clone())
                .set_next_page_token(token.clone())
                .send(),
        )
        .await?;
        for result in output.results_by_time.unwrap_or_default() {
            let (start, end) = match &result.time_period {
                Some(p) => (parse_date(&p.start)?, parse_date(&p.end)?),
                None => (period.start, period.end),
            };
            let groups = result.groups.unwrap_or_default();
            match (&group_by, grouping.is_some()) {
                (Some(group_by), true) => {
                    for group in groups {
                        let key = group.keys.unwrap_or_default().join(",");
                        let metrics = group.metrics.unwrap_or_default();
                        if let Some(value) = metrics.get(&query.metric) {
                            let (amount, unit) = amount(value)?;
                            rows.push(CostRow {
                                start,
                                end,
                                group: group_name(group_by, &key),
                                amount,
                                unit,
                                estimated: result.estimated,
                            });
                        }
                    }
                }
                _ => {
                    if let Some(value) = result.total.as_ref().and_then(|t| t.get(&query.metric)) {
                        let (amount, unit) = amount(value)?;
                        rows.push(CostRow {
                            start,
                            end,
                            group: label.to_owned(),
                            amount,
                            unit,
                            estimated: result.estimated,
                        });
                    }
                }
            }
        }
        token = output.next_page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(rows);
        }
    }
}

/// Reads a period: one request, or one per registered service.
async fn period_rows(
    client: &aws_sdk_costexplorer::Client,
    query: &CeQuery,
    period: Period,
    services: &[(String, BTreeMap<String, String>)],
    errors: &mut Vec<ReportError>,
    which: &str,
) -> Result<Vec<CostRow>, AwsError> {
    let dimension = |key: &str| {
        GroupDefinition::builder()
            .r#type(GroupDefinitionType::Dimension)
            .key(key)
            .build()
    };
    let grouping = match &query.group_by {
        None | Some(GroupBy::RegisteredService) => None,
        Some(GroupBy::Service) => Some(dimension("SERVICE")),
        Some(GroupBy::Account) => Some(dimension("LINKED_ACCOUNT")),
        Some(GroupBy::Region) => Some(dimension("REGION")),
        Some(GroupBy::Tag(key)) => Some(
            GroupDefinition::builder()
                .r#type(GroupDefinitionType::Tag)
                .key(key)
                .build(),
        ),
    };
    if query.group_by != Some(GroupBy::RegisteredService) {
        return cost_rows(client, query, period, grouping, None, UNGROUPED).await;
    }
    let mut rows = Vec::new();
    let mut failed = 0;
    for (name, tags) in services {
        match cost_rows(client, query, period, None, tag_filter(tags), name).await {
            Ok(mut found) => rows.append(&mut found),
            Err(e) => {
                failed += 1;
                errors.push(ReportError {
                    account: None,
                    region: None,
                    group: Some(format!("{which} {name}")),
                    reason: e.to_string(),
                });
            }
        }
    }
    if failed > 0
        && failed == services.len()
        && let Some(e) = errors.pop()
    {
        return Err(AwsError::Unreadable(e.reason));
    }
    Ok(rows)
}

fn totals(rows: &[CostRow]) -> BTreeMap<String, Decimal> {
    let mut by_group = BTreeMap::new();
    for row in rows {
        *by_group.entry(row.group.clone()).or_insert(Decimal::ZERO) += row.amount;
    }
    by_group
}

async fn forecast(
    client: &aws_sdk_costexplorer::Client,
    query: &CeQuery,
    today: Date,
) -> Result<Forecast, AwsError> {
    let start = today;
    let next_month = add_months(today.replace_day(1).unwrap_or(today), 1);
    let end = if next_month - start < Duration::days(1) {
        add_months(next_month, 1)
    } else {
        next_month
    };
    let metric = match query.metric.as_str() {
        "AmortizedCost" => Metric::AmortizedCost,
        "BlendedCost" => Metric::BlendedCost,
        "NetAmortizedCost" => Metric::NetAmortizedCost,
        "NetUnblendedCost" => Metric::NetUnblendedCost,
        "NormalizedUsageAmount" => Metric::NormalizedUsageAmount,
        "UsageQuantity" => Metric::UsageQuantity,
        _ => Metric::UnblendedCost,
    };
    let interval = DateInterval::builder()
        .start(start.to_string())
        .end(end.to_string())
        .build()
        .map_err(|e| AwsError::Invalid(e.to_string()))?;
    let output = call(
        "ce:GetCostForecast",
        client
            .get_cost_forecast()
            .time_period(interval)
            .granularity(CeGranularity::Monthly)
            .metric(metric)
            .send(),
    )
    .await?;
    let total = output.total.ok_or(AwsError::Incomplete {
        operation: "ce:GetCostForecast",
        field: "Total",
    })?;
    let (amount, unit) = amount(&total)?;
    Ok(Forecast {
        start,
        end,
        amount,
        unit,
    })
}

/// Builds the cost report for `query`. `services` (name and tags) are used when grouping
/// by registered service.
#[tracing::instrument(skip_all, fields(start = %query.period.start, end = %query.period.end))]
pub async fn cost_report(
    aws: &Aws,
    query: &CeQuery,
    services: &[(String, BTreeMap<String, String>)],
    progress: &dyn Progress,
) -> Result<Report<CostRow, CostSummary>, AwsError> {
    query.validate()?;
    let now = OffsetDateTime::now_utc();
    let client = aws_sdk_costexplorer::Client::new(aws.home_config());
    let previous = previous_period(query.period);
    let mut errors = Vec::new();
    let mut attempted = 2;
    progress.start(if query.forecast { 3 } else { 2 });

    let mut rows = period_rows(
        &client,
        query,
        query.period,
        services,
        &mut errors,
        "period",
    )
    .await?;
    progress.advance("period");
    let before = match period_rows(
        &client,
        query,
        previous,
        services,
        &mut errors,
        "previous period",
    )
    .await
    {
        Ok(rows) => Some(rows),
        Err(e) => {
            errors.push(ReportError {
                account: None,
                region: None,
                group: Some("previous period".into()),
                reason: e.to_string(),
            });
            None
        }
    };
    progress.advance("previous period");
    let forecast = if query.forecast {
        attempted += 1;
        let result = forecast(&client, query, now.date()).await;
        progress.advance("forecast");
        match result {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(ReportError {
                    account: None,
                    region: None,
                    group: Some("forecast".into()),
                    reason: e.to_string(),
                });
                None
            }
        }
    } else {
        None
    };
    progress.finish();
    if query.group_by == Some(GroupBy::RegisteredService) {
        attempted += 2 * services.len().saturating_sub(1);
    }

    rows.sort_by(|a, b| (a.start, &a.group).cmp(&(b.start, &b.group)));
    let unit = rows
        .iter()
        .map(|r| r.unit.clone())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "USD".into());
    let by_group = totals(&rows);
    let total: Decimal = by_group.values().copied().sum();
    let previous_by_group = before.as_deref().map(totals);
    let previous_total: Option<Decimal> = previous_by_group
        .as_ref()
        .map(|groups| groups.values().copied().sum());
    let change = previous_total.map(|p| total - p);
    let change_percent = match (change, previous_total) {
        (Some(change), Some(p)) if !p.is_zero() => {
            let mut percent = (change * Decimal::ONE_HUNDRED / p).round_dp(2);
            percent.rescale(2);
            Some(percent)
        }
        _ => None,
    };
    let mut top_movers: Vec<Mover> = match &previous_by_group {
        Some(before) => {
            let mut groups: Vec<&String> = by_group.keys().chain(before.keys()).collect();
            groups.sort();
            groups.dedup();
            groups
                .into_iter()
                .map(|group| {
                    let current = by_group.get(group).copied().unwrap_or(Decimal::ZERO);
                    let previous = before.get(group).copied().unwrap_or(Decimal::ZERO);
                    Mover {
                        group: group.clone(),
                        current,
                        previous,
                        change: current - previous,
                    }
                })
                .filter(|m| !m.change.is_zero())
                .collect()
        }
        None => Vec::new(),
    };
    top_movers.sort_by(|a, b| {
        b.change
            .abs()
            .cmp(&a.change.abs())
            .then(a.group.cmp(&b.group))
    });
    top_movers.truncate(TOP_MOVERS);

    let mut filters = BTreeMap::new();
    filters.insert("metric".into(), query.metric.clone());
    filters.insert(
        "granularity".into(),
        match query.granularity {
            Granularity::Daily => "daily",
            Granularity::Monthly => "monthly",
        }
        .into(),
    );
    if let Some(group_by) = &query.group_by {
        filters.insert("group_by".into(), group_by.label());
    }
    Ok(Report {
        kind: "aws.ce".into(),
        title: "AWS cost".into(),
        scope: Scope {
            accounts: Vec::new(),
            regions: Vec::new(),
            period: Some(query.period),
            filters,
        },
        generated_at: now,
        rows,
        summary: CostSummary {
            metric: query.metric.clone(),
            unit,
            total,
            previous_period: previous,
            previous_total,
            change,
            change_percent,
            by_group,
            top_movers,
            forecast,
        },
        errors,
        attempted,
    })
}

/// Cost per time bucket (all groups summed), in bucket order: the series a chart draws.
pub fn cost_over_time(rows: &[CostRow]) -> Vec<(Date, Decimal)> {
    let mut by_start: BTreeMap<Date, Decimal> = BTreeMap::new();
    for row in rows {
        *by_start.entry(row.start).or_insert(Decimal::ZERO) += row.amount;
    }
    by_start.into_iter().collect()
}

impl Headline<CostRow> for CostSummary {
    fn figures(&self, _rows: &[CostRow]) -> Vec<Figure> {
        let mut figures = vec![Figure::new("Total cost", money(self.total, &self.unit))];
        let previous = format!(
            "against {} to {}",
            self.previous_period.start, self.previous_period.end
        );
        figures.push(match (self.change, self.previous_total) {
            (Some(change), Some(before)) => {
                let percent = self
                    .change_percent
                    .map(|p| {
                        let sign = if p.is_sign_positive() && !p.is_zero() {
                            "+"
                        } else {
                            ""
                        };
                        format!("{sign}{} %, ", p.round_dp(1))
                    })
                    .unwrap_or_default();
                Figure::new("Change", signed_money(change, &self.unit)).noted(format!(
                    "{percent}{previous} ({})",
                    money(before, &self.unit)
                ))
            }
            _ => Figure::new("Change", "unknown")
                .noted(format!("the previous period could not be read; {previous}")),
        });
        if let Some(mover) = self.top_movers.first() {
            figures.push(
                Figure::new("Largest change", mover.group.clone())
                    .noted(signed_money(mover.change, &self.unit)),
            );
        }
        if let Some(forecast) = &self.forecast {
            figures.push(
                Figure::new("Forecast", money(forecast.amount, &forecast.unit))
                    .noted(format!("{} to {}", forecast.start, forecast.end)),
            );
        }
        figures
    }

    /// Cost per bucket, stacked by group: the seven largest groups, the rest as `other`.
    fn chart(&self, rows: &[CostRow]) -> Option<Chart> {
        use rust_decimal::prelude::ToPrimitive;
        const GROUPS: usize = 7;
        let buckets: std::collections::BTreeSet<Date> = rows.iter().map(|r| r.start).collect();
        let buckets: Vec<Date> = buckets.into_iter().collect();
        let mut groups: Vec<(&String, &Decimal)> = self.by_group.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut names: Vec<String> = groups
            .iter()
            .take(GROUPS)
            .map(|(g, _)| (*g).clone())
            .collect();
        if groups.len() > GROUPS {
            names.push("other".into());
        }
        if names.is_empty() {
            names.push(UNGROUPED.into());
        }
        let mut series: Vec<Series> = names
            .iter()
            .map(|name| Series {
                name: if name == UNGROUPED {
                    String::new()
                } else {
                    name.clone()
                },
                values: vec![0.0; buckets.len()],
            })
            .collect();
        for row in rows {
            let s = names
                .iter()
                .position(|n| *n == row.group)
                .unwrap_or(names.len() - 1);
            if let Ok(b) = buckets.binary_search(&row.start) {
                series[s].values[b] += row.amount.to_f64().unwrap_or_default();
            }
        }
        let monthly = buckets.iter().all(|d| d.day() == 1) && buckets.len() > 1;
        Some(Chart {
            title: "Cost over time".into(),
            x_label: if monthly { "month" } else { "period start" }.into(),
            y_label: format!("{} ({})", self.metric, self.unit),
            decimals: 2,
            categories: buckets
                .iter()
                .map(|d| {
                    if monthly {
                        format!("{}-{:02}", d.year(), u8::from(d.month()))
                    } else {
                        d.to_string()
                    }
                })
                .collect(),
            series,
        })
    }

    fn empty(&self) -> Option<String> {
        Some("Nothing in this period.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_default_period_is_last_month_and_this_month_to_date() {
        assert_eq!(
            default_period(date!(2026 - 11 - 26)),
            Period {
                start: date!(2026 - 10 - 01),
                end: date!(2026 - 11 - 26)
            }
        );
        assert_eq!(
            default_period(date!(2026 - 01 - 01)),
            Period {
                start: date!(2025 - 12 - 01),
                end: date!(2026 - 01 - 01)
            }
        );
    }

    #[test]
    fn the_last_full_month_ends_where_this_month_begins() {
        for today in [date!(2026 - 03 - 01), date!(2026 - 03 - 31)] {
            assert_eq!(
                last_full_month(today),
                Period {
                    start: date!(2026 - 02 - 01),
                    end: date!(2026 - 03 - 01)
                }
            );
        }
        assert_eq!(
            last_full_month(date!(2026 - 01 - 15)).start,
            date!(2025 - 12 - 01)
        );
    }

    #[test]
    fn the_previous_period_has_the_same_length_or_months() {
        let months = Period {
            start: date!(2026 - 01 - 01),
            end: date!(2026 - 03 - 01),
        };
        assert_eq!(
            previous_period(months),
            Period {
                start: date!(2025 - 11 - 01),
                end: date!(2026 - 01 - 01)
            }
        );
        let days = Period {
            start: date!(2026 - 03 - 10),
            end: date!(2026 - 03 - 17),
        };
        assert_eq!(
            previous_period(days),
            Period {
                start: date!(2026 - 03 - 03),
                end: date!(2026 - 03 - 10)
            }
        );
    }

    #[test]
    fn groups_parse_and_tag_keys_lose_their_prefix() {
        assert_eq!(
            GroupBy::parse("tag:team").ok(),
            Some(GroupBy::Tag("team".into()))
        );
        assert!(GroupBy::parse("tag:").is_err());
        assert_eq!(group_name(&GroupBy::Tag("team".into()), "team$pay"), "pay");
        assert_eq!(
            group_name(&GroupBy::Tag("team".into()), "team$"),
            "(untagged)"
        );
    }
}
