//! `aws.lambda.report`: the Lambda functions of the selected accounts and regions, with
//! deprecated runtimes flagged and each with its registered service.

use serde::{Deserialize, Serialize};

use super::params::{
    SERVICE_KEY, Selection, TagFilter, check_service, check_tag_filters, refine,
    refine_tag_filters, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::ValidationErrors;
use crate::plugins::aws::lambdas::{self, LambdaQuery, LambdaRow, LambdaSummary};
use crate::report::Report;

/// Params of `aws.lambda.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LambdaReportParams {
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// Only functions on one of these runtimes, e.g. python3.12.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<String>,
    /// Only functions on runtimes past their AWS deprecation date.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// Only functions with these tags, `KEY=VALUE` (values of one key are alternatives;
    /// keys must all match).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagFilter>,
    /// Only the functions of this registered service (name or id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Params for LambdaReportParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("region", "regions"),
        ("account", "accounts"),
        ("runtime", "runtimes"),
        ("tag", "tags"),
    ];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        check_tag_filters("tags", self.tags.len(), &mut errors);
        check_service("service", self.service.as_deref(), &mut errors);
        result(errors)
    }

    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine_tag_filters(schema, "tags");
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
    }
}

/// The Lambda report.
pub struct LambdaReport;

impl Action for LambdaReport {
    const NAME: &'static str = "aws.lambda.report";
    const SUMMARY: &'static str =
        "Lambda functions of the selected accounts and regions, deprecated runtimes flagged";
    const CHANGES: bool = false;
    type Params = LambdaReportParams;
    type Outcome = Report<LambdaRow, LambdaSummary>;

    async fn run(
        ctx: &Context,
        params: &LambdaReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let service = registered::service_name(ctx, params.service.as_deref()).await?;
        let matcher = registered::matcher(ctx).await?;
        let query = LambdaQuery {
            targets: params.selection.targets(),
            runtimes: params.runtimes.clone(),
            deprecated_only: params.deprecated,
            tags: params.tags.iter().map(TagFilter::pair).collect(),
            service,
        };
        Ok(lambdas::function_report(ctx.aws().await, &query, &matcher, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
