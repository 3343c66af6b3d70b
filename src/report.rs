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
