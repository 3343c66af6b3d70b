//! `aws.savings.report`: the waste of the selected accounts and regions, each finding with
//! why it is waste, its fix and an estimated monthly cost, sorted by money.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::params::{
    SERVICE_KEY, Selection, TagFilter, check_service, check_tag_filters, refine,
    refine_tag_filters, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::config::MAX_AGE_DAYS;
use crate::domain::{FieldError, ValidationErrors};
use crate::metrics::METRICS;
use crate::plugins::aws::ce;
use crate::plugins::aws::prices::Prices;
use crate::plugins::aws::savings::{
    self, Finding, FindingKind, SavingsQuery, SavingsSummary, Thresholds,
};
use crate::report::{Completeness, Report};

/// Params of `aws.savings.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SavingsReportParams {
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// Only these kinds of finding (all when none are given).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<FindingKind>,
    /// Only resources with these tags, `KEY=VALUE` (values of one key are alternatives;
    /// keys must all match).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagFilter>,
    /// Only the resources of this registered service (name or id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// EBS snapshots of deleted volumes count from this age in days (default
    /// `savings.snapshot_age_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_age_days: Option<i64>,
    /// EC2 instances count when stopped this many days (default `savings.stopped_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_days: Option<i64>,
    /// Manual RDS snapshots count from this age in days (default
    /// `savings.database_snapshot_age_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_snapshot_age_days: Option<i64>,
}

const THRESHOLDS: [&str; 3] = [
    "snapshot_age_days",
    "stopped_days",
    "database_snapshot_age_days",
];

impl SavingsReportParams {
    /// The thresholds: these params over the `[savings]` settings.
    pub fn thresholds(&self, defaults: Thresholds) -> Thresholds {
        Thresholds {
            snapshot_age_days: self.snapshot_age_days.unwrap_or(defaults.snapshot_age_days),
            stopped_days: self.stopped_days.unwrap_or(defaults.stopped_days),
            database_snapshot_age_days: self
                .database_snapshot_age_days
                .unwrap_or(defaults.database_snapshot_age_days),
        }
    }
}

impl Params for SavingsReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine_tag_filters(schema, "tags");
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
        for name in THRESHOLDS {
            refine::set(schema, name, "minimum", 0.into());
            refine::set(schema, name, "maximum", MAX_AGE_DAYS.into());
            if let Some(property) = refine::property(schema, name) {
                property.remove("format");
            }
        }
    }

    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("region", "regions"),
        ("account", "accounts"),
        ("kind", "kinds"),
        ("tag", "tags"),
    ];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        check_tag_filters("tags", self.tags.len(), &mut errors);
        check_service("service", self.service.as_deref(), &mut errors);
        for (name, value) in THRESHOLDS.into_iter().zip([
            self.snapshot_age_days,
            self.stopped_days,
            self.database_snapshot_age_days,
        ]) {
            if let Some(days) = value
                && !(0..=MAX_AGE_DAYS).contains(&days)
            {
                errors.push(FieldError::new(
                    name,
                    format!("expected 0 to {MAX_AGE_DAYS} days, got {days}"),
                ));
            }
        }
        result(errors)
    }
}

/// The savings report.
pub struct SavingsReport;

impl Action for SavingsReport {
    const NAME: &'static str = "aws.savings.report";
    const SUMMARY: &'static str = "Waste in the selected accounts and regions, each finding \
                                   with its fix and estimated monthly cost, by money";
    const CHANGES: bool = false;
    type Params = SavingsReportParams;
    type Outcome = Report<Finding, SavingsSummary>;

    async fn run(
        ctx: &Context,
        params: &SavingsReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let prices = Prices::load(ctx.settings.aws.prices_file.as_deref())
            .map_err(|e| ActionError::NotConfigured(e.to_string()))?;
        let service = registered::service_name(ctx, params.service.as_deref()).await?;
        let matcher = registered::matcher(ctx).await?;
        let query = SavingsQuery {
            targets: params.selection.targets(),
            kinds: params.kinds.clone(),
            tags: params.tags.iter().map(TagFilter::pair).collect(),
            service,
            thresholds: params.thresholds(Thresholds::from(&ctx.settings.savings)),
        };
        let aws = ctx.aws().await;
        let mut report = Box::pin(savings::savings_report(
            aws,
            &query,
            &matcher,
            &prices,
            env.progress,
        ))
        .await?;
        if ctx.settings.savings.billed_total {
            let month = ce::last_full_month(OffsetDateTime::now_utc().date());
            match Box::pin(ce::billed_total(aws, month)).await {
                Ok(billed) => report.summary.billed = Some(billed),
                Err(e) => report.summary.billed_unavailable = Some(e.to_string()),
            }
        }
        if report.completeness() == Completeness::Complete
            && params.tags.is_empty()
            && params.service.is_none()
        {
            METRICS.record_savings(report.generated_at, &report.summary);
        }
        Ok(report)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
