//! The use cases: every report, backup and change pincher makes is an action with a dotted
//! name, one params type (serde, validated when it is built, described by a JSON schema), one
//! typed outcome and one function. The CLI, the HTTP API and the rules call them alike; they
//! only parse their input into the params and render the outcome.
//!
//! Adding an action: write its module here (params, outcome, [`Action`] impl), list it in
//! [`registry`], and give it a face where one is wanted (docs/architecture.md).

pub mod chef_reconcile;
pub mod cost_report;
pub mod ebs_report;
pub mod ec2_power;
pub mod ec2_report;
pub mod lambda_report;
pub mod opsmanager_backup;
pub mod organizations_report;
pub mod params;
pub mod power;
pub mod rds_power;
pub mod rds_report;
pub mod registered;
pub mod runner;
pub mod savings_fix;
pub mod savings_report;
pub mod service_report;

use std::future::Future;
use std::sync::LazyLock;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::Context;
use crate::db::DbError;
use crate::domain::run::{RunOutcome, TargetResult};
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::Progress;
use crate::report::{Completeness, Report};

pub use params::Valid;
pub use runner::{Finished, RunOptions};

/// Why an action did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The params are not acceptable; each rejected field is named.
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// Something the params name does not exist (a registered service, …).
    #[error("{0}")]
    NotFound(String),
    /// The integration the action needs is not configured.
    #[error("{0}")]
    NotConfigured(String),
    /// A remote system or the database could not be used at all.
    #[error("{0}")]
    Unavailable(String),
    /// A safety rule refused the run (too many targets, …); nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The person asked declined; nothing was changed.
    #[error("cancelled; nothing was changed")]
    Declined,
    /// An unexpected failure.
    #[error("{0}")]
    Internal(String),
}

impl ActionError {
    /// An invalid value of one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(ValidationErrors(vec![FieldError::new(field, message)]))
    }
}

impl From<DbError> for ActionError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            e if e.is_unavailable() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<crate::plugins::aws::AwsError> for ActionError {
    fn from(e: crate::plugins::aws::AwsError) -> Self {
        use crate::plugins::aws::AwsError;
        match e {
            AwsError::Invalid(message) => Self::field("", message),
            other => Self::Unavailable(format!("AWS could not be read: {other}")),
        }
    }
}

/// The params of an action: serde, described by a JSON schema, checked once when built
/// ([`Valid`]).
pub trait Params:
    Serialize + DeserializeOwned + utoipa::ToSchema + Clone + Send + Sync + 'static
{
    /// Query-string names that stand for a property, for the HTTP routes that take the
    /// params as a query (`("state", "states")`).
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[];

    /// Checks what deserializing cannot: values, and rules between fields. Every rejected
    /// field is named.
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }

    /// Adds to the generated schema what `validate` checks and JSON Schema can state (caps,
    /// patterns, rules between fields), so the schema says exactly what is accepted.
    fn refine_schema(schema: &mut Value) {
        let _ = schema;
    }
}

/// Asks whether a change may go ahead: the CLI asks on the terminal; HTTP and rules have
/// already been authorised.
pub trait Approval: Send + Sync {
    /// `true` to go ahead with changing `targets` (the targets the action would change).
    fn approve<'a>(
        &'a self,
        action: &'static str,
        targets: &'a [TargetResult],
    ) -> BoxFuture<'a, bool>;
}

/// Approves every change: the caller was authorised before the run started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preapproved;

impl Approval for Preapproved {
    fn approve<'a>(&'a self, _: &'static str, _: &'a [TargetResult]) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

/// What an action is run with besides its params.
pub struct RunEnv<'a> {
    /// List and check, change nothing.
    pub dry_run: bool,
    /// Who runs it (token name, `cli`, rule), for the log lines of every change.
    pub actor: &'a str,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Who approves changes.
    pub approval: &'a dyn Approval,
}

/// How a run went, for its record and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// `ok`, `partial` or `failed`.
    pub outcome: RunOutcome,
    /// The result for each target.
    pub targets: Vec<TargetResult>,
}

impl Assessment {
    /// A run that read parts (accounts × regions, groups): ok, partial or failed as they
    /// were read; no targets.
    pub fn of_completeness(completeness: Completeness) -> Self {
        Self {
            outcome: match completeness {
                Completeness::Complete => RunOutcome::Ok,
                Completeness::Partial => RunOutcome::Partial,
                Completeness::Failed => RunOutcome::Failed,
            },
            targets: Vec::new(),
        }
    }

    /// A report's run.
    pub fn of_report<R, S>(report: &Report<R, S>) -> Self {
        Self::of_completeness(report.completeness())
    }

    /// A run over `targets`: failed when all failed, partial when some did.
    pub fn of_targets(targets: Vec<TargetResult>) -> Self {
        Self {
            outcome: RunOutcome::of_targets(&targets),
            targets,
        }
    }
}

/// One use case.
pub trait Action: Send + Sync + 'static {
    /// The dotted name, e.g. `aws.ec2.stop`.
    const NAME: &'static str;
    /// One line saying what it does.
    const SUMMARY: &'static str;
    /// Whether it changes anything outside pincher (a cloud, Ops Manager, a backup store).
    const CHANGES: bool;
    /// Its params.
    type Params: Params;
    /// Its typed outcome.
    type Outcome: Serialize + Send + Sync + 'static;

    /// Runs it.
    fn run(
        ctx: &Context,
        params: &Self::Params,
        env: &RunEnv<'_>,
    ) -> impl Future<Output = Result<Self::Outcome, ActionError>> + Send;

    /// How an outcome went.
    fn assess(outcome: &Self::Outcome) -> Assessment;
}

/// An action without its types: what the registry lists and what HTTP and rules run by name.
pub trait ErasedAction: Send + Sync {
    /// The dotted name.
    fn name(&self) -> &'static str;
    /// One line saying what it does.
    fn summary(&self) -> &'static str;
    /// Whether it changes anything.
    fn changes(&self) -> bool;
    /// The params' JSON schema (draft 2020-12, self-contained).
    fn params_schema(&self) -> Value;
    /// Query-string names that stand for params properties (`("state", "states")`).
    fn query_aliases(&self) -> &'static [(&'static str, &'static str)];
    /// Checks a params document; returns it as the action will see it (defaults filled in).
    fn check(&self, params: Value) -> Result<Value, ValidationErrors>;
    /// Checks `params` and starts a run in the background: its record is written before this
    /// returns, and finished when the run ends.
    fn spawn(
        &self,
        ctx: &Context,
        params: Value,
        options: RunOptions,
    ) -> BoxFuture<'static, Result<runner::Spawned, runner::StartError>>;
}

struct Entry<A>(std::marker::PhantomData<A>);

impl<A: Action> ErasedAction for Entry<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn summary(&self) -> &'static str {
        A::SUMMARY
    }

    fn changes(&self) -> bool {
        A::CHANGES
    }

    fn params_schema(&self) -> Value {
        params::params_schema::<A::Params>()
    }

    fn query_aliases(&self) -> &'static [(&'static str, &'static str)] {
        <A::Params as Params>::QUERY_ALIASES
    }

    fn check(&self, params: Value) -> Result<Value, ValidationErrors> {
        let valid = Valid::<A::Params>::from_json(params)?;
        serde_json::to_value(valid.get()).map_err(|e| {
            ValidationErrors(vec![FieldError::new("", format!("cannot serialize: {e}"))])
        })
    }

    fn spawn(
        &self,
        ctx: &Context,
        params: Value,
        options: RunOptions,
    ) -> BoxFuture<'static, Result<runner::Spawned, runner::StartError>> {
        let ctx = ctx.clone();
        Box::pin(async move {
            let params = Valid::<A::Params>::from_json(params)?;
            runner::spawn::<A>(ctx, params, options).await
        })
    }
}

fn entry<A: Action>() -> &'static dyn ErasedAction {
    // A zero-sized value: leaking it allocates nothing.
    Box::leak(Box::new(Entry::<A>(std::marker::PhantomData)))
}

static REGISTRY: LazyLock<Vec<&'static dyn ErasedAction>> = LazyLock::new(|| {
    vec![
        entry::<ec2_report::Ec2Report>(),
        entry::<rds_report::RdsReport>(),
        entry::<ebs_report::EbsReport>(),
        entry::<lambda_report::LambdaReport>(),
        entry::<savings_report::SavingsReport>(),
        entry::<organizations_report::OrganizationsReport>(),
        entry::<cost_report::CostReport>(),
        entry::<ec2_power::Ec2Stop>(),
        entry::<ec2_power::Ec2Start>(),
        entry::<rds_power::RdsStop>(),
        entry::<rds_power::RdsStart>(),
        entry::<savings_fix::ReleaseAddress>(),
        entry::<savings_fix::DeleteVolume>(),
        entry::<opsmanager_backup::OpsManagerBackup>(),
        entry::<chef_reconcile::ChefReconcile>(),
        entry::<service_report::ServiceReport>(),
    ]
});

/// Every action, in a fixed order.
pub fn registry() -> &'static [&'static dyn ErasedAction] {
    &REGISTRY
}

/// The action named `name`.
pub fn find(name: &str) -> Option<&'static dyn ErasedAction> {
    registry().iter().copied().find(|a| a.name() == name)
}

/// Checks a rule's steps against the registry: the action must exist and accept the params.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registered;

impl crate::domain::rule::StepCheck for Registered {
    fn check(&self, action: &str, params: &Value) -> Vec<FieldError> {
        let Some(found) = find(action) else {
            return vec![FieldError::new(
                "action",
                format!("no action {action:?}; see GET /actions"),
            )];
        };
        match found.check(params.clone()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .0
                .into_iter()
                .map(|e| {
                    let field = if e.field.is_empty() {
                        "params".to_owned()
                    } else {
                        format!("params.{}", e.field)
                    };
                    FieldError::new(field, e.message)
                })
                .collect(),
        }
    }
}

/// What `GET /actions` and `pincher actions list` show of an action.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionInfo {
    /// The dotted name.
    pub name: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Whether it changes anything (such runs are always recorded).
    pub changes: bool,
    /// JSON schema of its params.
    #[schema(value_type = Object)]
    pub params_schema: Value,
}

/// Every action described.
pub fn describe() -> Vec<ActionInfo> {
    registry()
        .iter()
        .map(|a| ActionInfo {
            name: a.name(),
            summary: a.summary(),
            changes: a.changes(),
            params_schema: a.params_schema(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once_with_a_schema_of_an_object() {
        let names: Vec<&str> = registry().iter().map(|a| a.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for expected in [
            "aws.ec2.report",
            "aws.rds.report",
            "aws.lambda.report",
            "aws.organizations.report",
            "aws.ce.report",
            "aws.ec2.stop",
            "aws.ec2.start",
            "aws.rds.stop",
            "aws.rds.start",
            "opsmanager.backup",
            "chef.reconcile",
            "services.report",
        ] {
            let action = find(expected).unwrap_or_else(|| panic!("{expected} is not registered"));
            let schema = action.params_schema();
            assert_eq!(schema["type"], "object", "{expected}: {schema}");
        }
    }

    #[test]
    fn only_the_changing_actions_say_so() {
        let changing: Vec<&str> = registry()
            .iter()
            .filter(|a| a.changes())
            .map(|a| a.name())
            .collect();
        assert_eq!(
            changing,
            [
                "aws.ec2.stop",
                "aws.ec2.start",
                "aws.rds.stop",
                "aws.rds.start",
                "aws.ec2.release-address",
                "aws.ebs.delete-volume",
                "opsmanager.backup"
            ]
        );
    }
}
