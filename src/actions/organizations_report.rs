//! `aws.organizations.report`: the accounts of the organization with their organizational-unit
//! path.

use serde::{Deserialize, Serialize};

use super::{Action, ActionError, Assessment, Params, RunEnv};
use crate::app::Context;
use crate::plugins::aws::organizations::{self, AccountRow, AccountSummary};
use crate::report::Report;

/// Params of `aws.organizations.report`: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrganizationsReportParams {}

impl Params for OrganizationsReportParams {}

/// The Organizations report.
pub struct OrganizationsReport;

impl Action for OrganizationsReport {
    const NAME: &'static str = "aws.organizations.report";
    const SUMMARY: &'static str =
        "Accounts of the organization with their organizational-unit path";
    const CHANGES: bool = false;
    type Params = OrganizationsReportParams;
    type Outcome = Report<AccountRow, AccountSummary>;

    async fn run(
        ctx: &Context,
        _: &OrganizationsReportParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        Ok(organizations::account_report(ctx.aws().await, env.progress).await?)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        Assessment::of_report(outcome)
    }
}
