//! `aws.lambda.report`: the Lambda functions of the selected accounts and regions, with
//! deprecated runtimes flagged.

use serde::{Deserialize, Serialize};

use super::params::{Selection, result};
use super::{Action, ActionError, Assessment, Params, RunEnv};
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
}

impl Params for LambdaReportParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("region", "regions"),
        ("account", "accounts"),
        ("runtime", "runtimes"),
    ];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        result(errors)
    }

    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
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
        let query = LambdaQuery {
            targets: params.selection.targets(),
            runtimes: params.runtimes.clone(),
            deprecated_only: params.deprecated,
        };
        Ok(lambdas::function_report(ctx.aws().await, &query, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
