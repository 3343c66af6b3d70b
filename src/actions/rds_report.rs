//! `aws.rds.report`: the RDS DB instances of the selected accounts and regions, each matched
//! to its registered service.

use serde::{Deserialize, Serialize};

use super::params::{
    SERVICE_KEY, Selection, TagFilter, check_service, check_tag_filters, refine,
    refine_tag_filters, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::ValidationErrors;
use crate::plugins::aws::rds::{self, RdsQuery, RdsRow, RdsSummary};
use crate::report::Report;

/// Params of `aws.rds.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RdsReportParams {
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// Only instances of one of these engines, e.g. postgres.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<String>,
    /// Only instances carrying every one of these tags, `KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagFilter>,
    /// Only the instances of this registered service (name or id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Params for RdsReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine_tag_filters(schema, "tags");
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
    }

    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("region", "regions"),
        ("account", "accounts"),
        ("engine", "engines"),
        ("tag", "tags"),
    ];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        check_tag_filters("tags", self.tags.len(), &mut errors);
        check_service("service", self.service.as_deref(), &mut errors);
        result(errors)
    }
}

/// The RDS inventory report.
pub struct RdsReport;

impl Action for RdsReport {
    const NAME: &'static str = "aws.rds.report";
    const SUMMARY: &'static str =
        "RDS DB instances of the selected accounts and regions, with their registered services";
    const CHANGES: bool = false;
    type Params = RdsReportParams;
    type Outcome = Report<RdsRow, RdsSummary>;

    async fn run(
        ctx: &Context,
        params: &RdsReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let service = registered::service_name(ctx, params.service.as_deref()).await?;
        let matcher = registered::matcher(ctx).await?;
        let query = RdsQuery {
            targets: params.selection.targets(),
            identifiers: Vec::new(),
            engines: params.engines.clone(),
            tags: params.tags.iter().map(TagFilter::pair).collect(),
            service,
        };
        Ok(rds::instance_report(ctx.aws().await, &query, &matcher, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
