//! `aws.ec2.stop` and `aws.ec2.start`: EC2 instances stopped or started, with EC2's own dry
//! run (`DryRunOperation` means allowed).

use aws_config::SdkConfig;

use super::ActionError;
use super::power::{Candidate, Found, Resource, Step, Switch, Switchable, Wanted};
use crate::app::Context;
use crate::plugins::Progress;
use crate::plugins::aws::ec2::{self, Ec2Query};
use crate::plugins::aws::{Power, ServiceMatcher, Switched};

/// EC2 instances, as targets of a stop or start.
pub struct Instances;

impl Switchable for Instances {
    const STOP: &'static str = "aws.ec2.stop";
    const STOP_SUMMARY: &'static str = "Stop the EC2 instances selected by ids, tags or service";
    const START: &'static str = "aws.ec2.start";
    const START_SUMMARY: &'static str = "Start the EC2 instances selected by ids, tags or service";
}

impl Resource for Instances {
    type Change = Power;

    async fn find(
        ctx: &Context,
        wanted: &Wanted<'_>,
        matcher: &ServiceMatcher,
        progress: &dyn Progress,
    ) -> Result<Found, ActionError> {
        let query = Ec2Query {
            targets: wanted.selection.targets(),
            ids: wanted.ids.clone(),
            tags: wanted
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            service: wanted.service.clone(),
            include_tags: true,
            ..Ec2Query::default()
        };
        let report = ec2::instance_report(ctx.aws().await, &query, matcher, progress).await?;
        Ok(Found {
            candidates: report
                .rows
                .into_iter()
                .map(|row| Candidate {
                    account: row.account,
                    region: row.region,
                    id: row.instance_id,
                    state: row.state,
                    tags: row.tags.unwrap_or_default(),
                    cluster: None,
                    attached_to: None,
                })
                .collect(),
            errors: report.errors,
            attempted: report.attempted,
        })
    }

    fn step(candidate: &Candidate, power: Power) -> Step {
        match (power, candidate.state.as_str()) {
            (_, state @ ("terminated" | "shutting-down")) => {
                Step::Fail(format!("the instance is {state}"))
            }
            (Power::Stop, "stopped" | "stopping") | (Power::Start, "running" | "pending") => {
                Step::Nothing
            }
            (Power::Stop, "running" | "pending") | (Power::Start, "stopped") => Step::Switch,
            (Power::Start, "stopping") => {
                Step::Fail("the instance is stopping; start it once it has stopped".into())
            }
            (_, state) => Step::Fail(format!("the instance is {state}")),
        }
    }

    async fn apply(
        config: &SdkConfig,
        ids: &[String],
        power: Power,
        dry_run: bool,
    ) -> Vec<(String, Switched)> {
        ec2::switch(config, ids, power, dry_run).await
    }
}

/// Stops EC2 instances.
pub type Ec2Stop = Switch<Instances, true>;

/// Starts EC2 instances.
pub type Ec2Start = Switch<Instances, false>;
