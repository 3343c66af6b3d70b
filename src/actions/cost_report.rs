//! `aws.ce.report`: cost for a period by time and group (Cost Explorer), with the change
//! against the previous period and, when asked, a forecast of the current month.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::params::{check_date, date_pattern, refine, result, ymd};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::aws::ce::{self, CostRow, CostSummary, Granularity, GroupBy};
use crate::report::{Period, Report};

/// The metric reported when none is given.
pub const DEFAULT_METRIC: &str = "UnblendedCost";

/// Params of `aws.ce.report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CostReportParams {
    /// First day (YYYY-MM-DD); default: the first day of last month.
    #[serde(with = "ymd::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub start: Option<Date>,
    /// First day not included (YYYY-MM-DD); default: today (month to date).
    #[serde(with = "ymd::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub end: Option<Date>,
    /// Time buckets.
    pub granularity: Granularity,
    /// Cost metric: UnblendedCost, AmortizedCost, NetUnblendedCost, BlendedCost, …
    pub metric: String,
    /// Group by service, account, region, tag:KEY or registered-service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// Also forecast the rest of the current month (GetCostForecast).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forecast: bool,
}

impl Default for CostReportParams {
    fn default() -> Self {
        Self {
            start: None,
            end: None,
            granularity: Granularity::Monthly,
            metric: DEFAULT_METRIC.into(),
            group_by: None,
            forecast: false,
        }
    }
}

impl CostReportParams {
    /// The period on `today`: the dates given, else last month and this month to date.
    pub fn period(&self, today: Date) -> Period {
        let defaults = ce::default_period(today);
        Period {
            start: self.start.unwrap_or(defaults.start),
            end: self.end.unwrap_or(defaults.end),
        }
    }

    /// The grouping, when one is given.
    pub fn grouping(&self) -> Option<GroupBy> {
        self.group_by
            .as_deref()
            .and_then(|g| GroupBy::parse(g).ok())
    }
}

impl Params for CostReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        refine::set(schema, "start", "pattern", date_pattern().into());
        refine::set(schema, "end", "pattern", date_pattern().into());
        refine::set(schema, "metric", "enum", serde_json::json!(ce::METRICS));
        refine::set(
            schema,
            "group_by",
            "pattern",
            "^(service|account|region|registered-service|registered_service|tag:[\\s\\S]+)$".into(),
        );
    }

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        check_date("start", self.start, &mut errors);
        check_date("end", self.end, &mut errors);
        if errors.is_empty() {
            let period = self.period(OffsetDateTime::now_utc().date());
            if period.start >= period.end {
                let field = if self.end.is_some() { "end" } else { "start" };
                errors.push(FieldError::new(
                    field,
                    format!(
                        "the period must end after it starts ({} to {})",
                        period.start, period.end
                    ),
                ));
            }
        }
        if !ce::METRICS.contains(&self.metric.as_str()) {
            errors.push(FieldError::new(
                "metric",
                format!("expected one of {}", ce::METRICS.join(", ")),
            ));
        }
        if let Some(group) = &self.group_by
            && let Err(e) = GroupBy::parse(group)
        {
            errors.push(FieldError::new("group_by", e.to_string()));
        }
        result(errors)
    }
}

/// The cost report.
pub struct CostReport;

impl Action for CostReport {
    const NAME: &'static str = "aws.ce.report";
    const SUMMARY: &'static str = "Cost for a period by time and group, with the change against \
                                  the previous period (Cost Explorer)";
    const CHANGES: bool = false;
    type Params = CostReportParams;
    type Outcome = Report<CostRow, CostSummary>;

    async fn run(
        ctx: &Context,
        params: &CostReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let group_by = params.grouping();
        let services = if group_by == Some(GroupBy::RegisteredService) {
            registered::tagged(ctx).await?
        } else {
            Vec::new()
        };
        let query = ce::CeQuery {
            period: params.period(OffsetDateTime::now_utc().date()),
            granularity: params.granularity,
            metric: params.metric.clone(),
            group_by,
            forecast: params.forecast,
        };
        Ok(ce::cost_report(ctx.aws().await, &query, &services, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
