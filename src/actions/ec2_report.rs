//! `aws.ec2.report`: the EC2 instances of the selected accounts and regions, each matched to
//! its registered service.

use serde::{Deserialize, Serialize};

use super::params::{
    SERVICE_KEY, Selection, TagFilter, check_service, check_tag_filters, refine,
    refine_tag_filters, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::ValidationErrors;
use crate::plugins::aws::ec2::{self, Ec2Query, Ec2Row, Ec2Summary};
use crate::report::Report;

/// Params of `aws.ec2.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Ec2ReportParams {
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// Only instances in one of these states: pending, running, stopping, stopped, …
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<String>,
    /// Only instances with these tags, `KEY=VALUE`; values of one key are alternatives, keys
    /// must all match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagFilter>,
    /// Only instances of one of these types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Only the instances of this registered service (name or id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Include every tag of every instance.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_tags: bool,
}

impl Params for Ec2ReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine_tag_filters(schema, "tags");
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
    }

    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("region", "regions"),
        ("account", "accounts"),
        ("state", "states"),
        ("type", "types"),
        ("tag", "tags"),
        ("tags", "include_tags"),
    ];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        check_tag_filters("tags", self.tags.len(), &mut errors);
        check_service("service", self.service.as_deref(), &mut errors);
        result(errors)
    }
}

/// The EC2 inventory report.
pub struct Ec2Report;

impl Action for Ec2Report {
    const NAME: &'static str = "aws.ec2.report";
    const SUMMARY: &'static str =
        "EC2 instances of the selected accounts and regions, with their registered services";
    const CHANGES: bool = false;
    type Params = Ec2ReportParams;
    type Outcome = Report<Ec2Row, Ec2Summary>;

    async fn run(
        ctx: &Context,
        params: &Ec2ReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let service = match &params.service {
            Some(key) => {
                let found = registered::named(ctx, "service", key).await?;
                Some((found.name, found.tags))
            }
            None => None,
        };
        let matcher = registered::matcher(ctx).await?;
        let query = Ec2Query {
            targets: params.selection.targets(),
            ids: Vec::new(),
            states: params.states.clone(),
            tags: params.tags.iter().map(TagFilter::pair).collect(),
            types: params.types.clone(),
            service,
            include_tags: params.include_tags,
        };
        Ok(ec2::instance_report(ctx.aws().await, &query, &matcher, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
