//! `aws.rds.stop` and `aws.rds.start`: RDS DB instances stopped or started. RDS has no dry
//! run, so a dry run lists the plan. Members of an Aurora cluster are skipped: their power is
//! the cluster's.

use aws_config::SdkConfig;

use super::ActionError;
use super::power::{Candidate, Found, Resource, Step, Switch, Switchable, Wanted};
use crate::app::Context;
use crate::plugins::Progress;
use crate::plugins::aws::rds::{self, RdsQuery};
use crate::plugins::aws::{Power, ServiceMatcher, Switched};

/// What a stopped DB instance's result says.
pub const RESTART_NOTE: &str = "AWS starts a stopped DB instance again after 7 days";

/// RDS DB instances, as targets of a stop or start.
pub struct DbInstances;

impl Switchable for DbInstances {
    const STOP: &'static str = "aws.rds.stop";
    const STOP_SUMMARY: &'static str = "Stop the RDS DB instances selected by ids, tags or service (AWS restarts them after 7 days)";
    const START: &'static str = "aws.rds.start";
    const START_SUMMARY: &'static str =
        "Start the RDS DB instances selected by ids, tags or service";
}

impl Resource for DbInstances {
    type Change = Power;

    async fn find(
        ctx: &Context,
        wanted: &Wanted<'_>,
        matcher: &ServiceMatcher,
        progress: &dyn Progress,
    ) -> Result<Found, ActionError> {
        let query = RdsQuery {
            targets: wanted.selection.targets(),
            identifiers: wanted.ids.clone(),
            tags: wanted
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            service: wanted.service.as_ref().map(|(name, _)| name.clone()),
            ..RdsQuery::default()
        };
        let report = rds::instance_report(ctx.aws().await, &query, matcher, progress).await?;
        Ok(Found {
            candidates: report
                .rows
                .into_iter()
                .map(|row| Candidate {
                    account: row.account,
                    region: row.region,
                    id: row.identifier,
                    state: row.status,
                    tags: row.tags,
                    cluster: row.cluster,
                    attached_to: None,
                })
                .collect(),
            errors: report.errors,
            attempted: report.attempted,
        })
    }

    fn step(candidate: &Candidate, power: Power) -> Step {
        if let Some(cluster) = &candidate.cluster {
            return Step::Skip(format!(
                "a member of the Aurora cluster {cluster}: stop or start the cluster instead"
            ));
        }
        match (power, candidate.state.as_str()) {
            (Power::Stop, "stopped" | "stopping") | (Power::Start, "available" | "starting") => {
                Step::Nothing
            }
            (Power::Stop, "available") | (Power::Start, "stopped") => Step::Switch,
            (_, state) => Step::Fail(format!("the DB instance is {state}")),
        }
    }

    async fn apply(
        config: &SdkConfig,
        ids: &[String],
        power: Power,
        dry_run: bool,
    ) -> Vec<(String, Switched)> {
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            let outcome = if dry_run {
                Switched::Allowed
            } else {
                rds::switch(config, id, power).await
            };
            done.push((id.clone(), outcome));
        }
        done
    }

    fn note(power: Power) -> Option<&'static str> {
        (power == Power::Stop).then_some(RESTART_NOTE)
    }
}

/// Stops RDS DB instances.
pub type RdsStop = Switch<DbInstances, true>;

/// Starts RDS DB instances.
pub type RdsStart = Switch<DbInstances, false>;
