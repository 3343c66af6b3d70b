//! `Report<Row>`: the typed result of every report — what was asked, when, the rows, a
//! summary and the parts that failed. Data only; `render` turns it into any format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a report covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Accounts read (empty when not account-based).
    pub accounts: Vec<String>,
    /// Regions read (empty when not region-based).
    pub regions: Vec<String>,
    /// Period covered, for cost reports.
    pub period: Option<Period>,
    /// Filters applied, by name.
    pub filters: BTreeMap<String, String>,
}

/// A half-open date range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day included.
    pub start: time::Date,
    /// First day not included.
    pub end: time::Date,
}

/// One part of a report that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    /// Account, when the failure is of one account.
    pub account: Option<String>,
    /// Region, when the failure is of one region.
    pub region: Option<String>,
    /// Group or other unit, when the failure is of one.
    pub group: Option<String>,
    /// Why it failed.
    pub reason: String,
}

/// How complete a report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Completeness {
    /// Every part was read.
    Complete,
    /// Some parts failed; the rest is in the rows.
    Partial,
    /// Nothing could be read.
    Failed,
}

/// A typed report. Its serde form is the stable JSON contract of every report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report<R, S = serde_json::Value> {
    /// Machine name of the report, e.g. `aws.ec2`.
    pub kind: String,
    /// Human title, e.g. `EC2 instances`.
    pub title: String,
    /// What was covered.
    pub scope: Scope,
    /// When it was made (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The rows.
    pub rows: Vec<R>,
    /// Totals and counts.
    pub summary: S,
    /// Parts that failed.
    pub errors: Vec<ReportError>,
    /// How many parts (account × region, group, …) were attempted.
    pub attempted: usize,
}

impl<R, S> Report<R, S> {
    /// Whether every part, some parts or no part was read.
    pub fn completeness(&self) -> Completeness {
        if self.errors.is_empty() {
            Completeness::Complete
        } else if self.errors.len() < self.attempted {
            Completeness::Partial
        } else {
            Completeness::Failed
        }
    }
}

/// Rows that render as a table: fixed columns, one text cell per column.
pub trait Tabular {
    /// Column headers.
    fn columns() -> Vec<&'static str>;
    /// Cells in column order.
    fn cells(&self) -> Vec<String>;
    /// What the rows are, in the plural (`instances`), for the headline count and for saying
    /// that there are none.
    fn noun() -> &'static str {
        "rows"
    }
    /// Whether the headline opens with the number of rows (not for rows that are not things,
    /// such as cost buckets).
    fn counted() -> bool {
        true
    }
    /// Columns whose values the headline counts (state, type, region, service…), in the
    /// order shown.
    fn facets() -> Vec<&'static str> {
        Vec::new()
    }
    /// The column a report's chart counts rows by, and the column its bars are stacked by:
    /// by default the first facet, unstacked.
    fn chart_by() -> Option<(&'static str, Option<&'static str>)> {
        Self::facets().first().map(|main| (*main, None))
    }
}

/// One headline figure of a report: `Total cost`, `1,234.56 USD`, `+12.3 % on the previous
/// period`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// What it counts.
    pub label: String,
    /// The figure, formatted.
    pub value: String,
    /// A line of context under it, if any.
    pub note: Option<String>,
}

impl Figure {
    /// A figure with no note.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            note: None,
        }
    }

    /// This figure with a note.
    pub fn noted(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// One stack of bars in a [`Chart`]: a name and one value per category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// One value per category of the chart.
    pub values: Vec<f64>,
}

/// A bar chart of a report's main dimension: one bar per category, stacked by series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Its title.
    pub title: String,
    /// What the categories are (the x axis), e.g. `month`.
    pub x_label: String,
    /// What the values are (the y axis), e.g. `cost (USD)`.
    pub y_label: String,
    /// Decimal places shown in value labels.
    pub decimals: usize,
    /// The categories, in order.
    pub categories: Vec<String>,
    /// The stacked series (one for a plain bar chart).
    pub series: Vec<Series>,
}

/// What a report's summary adds to its headline: figures and a chart of its own. Counts of
/// the rows by their facets come from [`Tabular`] and need nothing here.
pub trait Headline<R> {
    /// Headline figures beyond the row counts (totals, change, estimates).
    fn figures(&self, _rows: &[R]) -> Vec<Figure> {
        Vec::new()
    }
    /// A chart that says more than the counts by facet.
    fn chart(&self, _rows: &[R]) -> Option<Chart> {
        None
    }
    /// The sentence shown instead of an empty table.
    fn empty(&self) -> Option<String> {
        None
    }
}

impl<R> Headline<R> for serde_json::Value {}

/// `value` with `decimals` places and thousands separated by commas: `12,345.60`.
pub fn number(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A time in UTC to the second, as people read it in a page: `2026-12-02T13:52:18Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// An amount of money to two places with its unit: `1,234.50 USD`.
pub fn money(amount: rust_decimal::Decimal, unit: &str) -> String {
    use rust_decimal::prelude::ToPrimitive;
    format!("{} {unit}", number(amount.to_f64().unwrap_or_default(), 2))
        .trim_end()
        .to_owned()
}

/// A change with its sign: `+12.30 USD`, `-4.00 USD`.
pub fn signed_money(amount: rust_decimal::Decimal, unit: &str) -> String {
    let sign = if amount.is_sign_positive() && !amount.is_zero() {
        "+"
    } else {
        ""
    };
    format!("{sign}{}", money(amount, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(errors: usize, attempted: usize) -> Report<()> {
        Report {
            kind: "test".into(),
            title: "Test".into(),
            scope: Scope::default(),
            generated_at: OffsetDateTime::UNIX_EPOCH,
            rows: Vec::new(),
            summary: serde_json::Value::Null,
            errors: (0..errors)
                .map(|i| ReportError {
                    account: None,
                    region: Some(format!("r{i}")),
                    group: None,
                    reason: "denied".into(),
                })
                .collect(),
            attempted,
        }
    }

    #[test]
    fn completeness_follows_the_failed_parts() {
        assert_eq!(report(0, 2).completeness(), Completeness::Complete);
        assert_eq!(report(1, 2).completeness(), Completeness::Partial);
        assert_eq!(report(2, 2).completeness(), Completeness::Failed);
        assert_eq!(report(0, 0).completeness(), Completeness::Complete);
    }
}
