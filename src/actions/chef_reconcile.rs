//! `chef.reconcile`: the Chef nodes joined with the EC2 inventory (a join of two plugins):
//! instances no node manages, and nodes whose instance is gone or stopped.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::params::{Selection, result};
use super::{Action, ActionError, Assessment, Params, RunEnv};
use crate::app::Context;
use crate::domain::ValidationErrors;
use crate::plugins::aws::ServiceMatcher;
use crate::plugins::aws::ec2::{self, Ec2Query, Ec2Row, Ec2Summary};
use crate::plugins::chef::ChefError;
use crate::plugins::chef::nodes::list_nodes;
use crate::plugins::chef::reconcile::{
    Ec2InstanceRef, Ec2Inventory, ReconcileRow, ReconcileSummary, reconcile,
};
use crate::report::Report;

/// Params of `chef.reconcile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ChefReconcileParams {
    /// Accounts and regions of the EC2 inventory.
    #[serde(flatten)]
    pub selection: Selection,
    /// Only nodes of this Chef environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl Params for ChefReconcileParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] =
        &[("region", "regions"), ("account", "accounts")];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.selection.check(&mut errors);
        result(errors)
    }

    fn refine_schema(schema: &mut serde_json::Value) {
        Selection::refine_schema(schema);
    }
}

/// The Chef × EC2 reconciliation.
pub struct ChefReconcile;

impl Action for ChefReconcile {
    const NAME: &'static str = "chef.reconcile";
    const SUMMARY: &'static str = "Chef nodes joined with the EC2 inventory: instances with no \
                                  node, and nodes whose instance is gone or stopped";
    const CHANGES: bool = false;
    type Params = ChefReconcileParams;
    type Outcome = Report<ReconcileRow, ReconcileSummary>;

    async fn run(
        ctx: &Context,
        params: &ChefReconcileParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        if ctx.settings.chef.server_url.is_none() {
            return Err(ActionError::NotConfigured(
                "Chef is not configured: set chef.server_url, chef.client_name and \
                 chef.client_key"
                    .into(),
            ));
        }
        let chef = ctx.chef().await.map_err(chef_unusable)?;
        let query = Ec2Query {
            targets: params.selection.targets(),
            ..Ec2Query::default()
        };
        let matcher = ServiceMatcher::default();
        let aws = ctx.aws().await;
        let (nodes, instances) = tokio::join!(
            list_nodes(chef, params.environment.as_deref()),
            ec2::instance_report(aws, &query, &matcher, env.progress),
        );
        let nodes = nodes
            .map_err(|e| ActionError::Unavailable(format!("cannot list the Chef nodes: {e}")))?;
        let instances = instances
            .map_err(|e| ActionError::Unavailable(format!("cannot read the EC2 inventory: {e}")))?;
        let mut report = reconcile(&nodes, &inventory_of(&instances), OffsetDateTime::now_utc());
        if let Some(environment) = &params.environment {
            report
                .scope
                .filters
                .insert("environment".into(), environment.clone());
        }
        Ok(report)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}

fn chef_unusable(e: ChefError) -> ActionError {
    match e {
        ChefError::Settings { .. } | ChefError::Key { .. } => {
            ActionError::NotConfigured(format!("cannot use the Chef settings: {e}"))
        }
        other => ActionError::Unavailable(other.to_string()),
    }
}

/// The EC2 inventory of an EC2 report, in the reconciliation's terms.
pub fn inventory_of(report: &Report<Ec2Row, Ec2Summary>) -> Ec2Inventory {
    Ec2Inventory {
        instances: report
            .rows
            .iter()
            .map(|row| Ec2InstanceRef {
                account: row.account.clone(),
                region: row.region.clone(),
                instance_id: row.instance_id.clone(),
                state: row.state.clone(),
                name: row.name.clone(),
            })
            .collect(),
        accounts: report.scope.accounts.clone(),
        regions: report.scope.regions.clone(),
        errors: report.errors.clone(),
        attempted: report.attempted,
    }
}
