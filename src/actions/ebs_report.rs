//! `aws.ebs.report`: the EBS volumes and snapshots of the selected accounts and regions, each
//! with its registered service and an estimated monthly cost.

use serde::{Deserialize, Serialize};

use super::params::{
    SERVICE_KEY, Selection, TagFilter, check_service, check_tag_filters, refine,
    refine_tag_filters, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::ValidationErrors;
use crate::plugins::aws::ebs::{self, EbsKind, EbsQuery, EbsRow, EbsSummary};
use crate::plugins::aws::prices::Prices;
use crate::report::Report;

/// Params of `aws.ebs.report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct EbsReportParams {
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// `volumes`, `snapshots`, or (none given) both.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<EbsKind>,
    /// Only resources with these tags, `KEY=VALUE` (values of one key are alternatives;
    /// keys must all match).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<TagFilter>,
    /// Only the resources of this registered service (name or id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Params for EbsReportParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
        refine_tag_filters(schema, "tags");
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
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
        result(errors)
    }
}

/// The EBS storage inventory.
pub struct EbsReport;

impl Action for EbsReport {
    const NAME: &'static str = "aws.ebs.report";
    const SUMMARY: &'static str = "EBS volumes and snapshots of the selected accounts and \
                                   regions, with their services and estimated monthly cost";
    const CHANGES: bool = false;
    type Params = EbsReportParams;
    type Outcome = Report<EbsRow, EbsSummary>;

    async fn run(
        ctx: &Context,
        params: &EbsReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let prices = Prices::load(ctx.settings.aws.prices_file.as_deref())
            .map_err(|e| ActionError::NotConfigured(e.to_string()))?;
        let service = registered::service_name(ctx, params.service.as_deref()).await?;
        let matcher = registered::matcher(ctx).await?;
        let query = EbsQuery {
            targets: params.selection.targets(),
            kinds: params.kinds.clone(),
            tags: params.tags.iter().map(TagFilter::pair).collect(),
            service,
        };
        Ok(ebs::storage_report(ctx.aws().await, &query, &matcher, &prices, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
