//! The savings fixes, `aws.ec2.release-address` and `aws.ebs.delete-volume`: changing actions
//! like stop and start (a selection that names something, the protect tag, `max_targets`,
//! approval, a dry run), whose targets can also be the savings report's findings of their kind
//! at least N days old, so a rule can clean up on a schedule. A volume is snapshotted before it
//! is deleted unless `snapshot` is false.

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};

use super::params::{refine, result};
use super::power::{
    Candidate, Found, PowerOutcome, PowerParams, Resource, Selecting, Step, Wanted, run,
};
use super::{Action, ActionError, Assessment, Params, RunEnv};
use crate::app::Context;
use crate::config::MAX_AGE_DAYS;
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::Progress;
use crate::plugins::aws::fixes::{self, Fixable};
use crate::plugins::aws::prices::Prices;
use crate::plugins::aws::savings::{self, FindingKind, SavingsQuery, Thresholds};
use crate::plugins::aws::{Part, ServiceMatcher, Switched};

/// Params of `aws.ec2.release-address` (and the targets of `aws.ebs.delete-volume`): the
/// selection of stop and start, or `findings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FixParams {
    /// The resources, as stop and start select them.
    #[serde(flatten)]
    pub target: PowerParams,
    /// Target the savings report's findings of this action's kind (idle addresses,
    /// unattached volumes), narrowed by `ids`, `tags` and `service` when given.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub findings: bool,
    /// With `findings`: only findings at least this many days old. AWS gives no age for an
    /// Elastic IP, so above 0 no address is selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 3650)]
    pub min_age_days: Option<u32>,
}

impl FixParams {
    fn selecting(&self) -> Selecting<'_> {
        Selecting {
            findings: self.findings.then(|| self.min_age_days.unwrap_or(0)),
            ..self.target.selecting()
        }
    }
}

impl Params for FixParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = PowerParams::QUERY_ALIASES;

    fn refine_schema(schema: &mut serde_json::Value) {
        PowerParams::refine_fields(schema);
        if let Some(min_age) = refine::property(schema, "min_age_days") {
            min_age.remove("format");
        }
        // As for stop and start, with `findings` as one more way to select.
        refine::add_rule(
            schema,
            serde_json::json!({"anyOf": [
                {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
                {"required": ["tags"], "properties": {"tags": {"minProperties": 1}}},
                {"required": ["service"], "properties": {"service": {"type": "string"}}},
                {"required": ["findings"], "properties": {"findings": {"const": true}}}
            ]}),
        );
        refine::add_rule(
            schema,
            serde_json::json!({
                "if": {"required": ["min_age_days"]},
                "then": {"required": ["findings"], "properties": {"findings": {"const": true}}}
            }),
        );
    }

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.target.check(!self.findings, &mut errors);
        if let Some(days) = self.min_age_days {
            if !self.findings {
                errors.push(FieldError::new(
                    "min_age_days",
                    "min_age_days applies to findings; add \"findings\": true",
                ));
            }
            if i64::from(days) > MAX_AGE_DAYS {
                errors.push(FieldError::new(
                    "min_age_days",
                    format!("expected 0 to {MAX_AGE_DAYS} days, got {days}"),
                ));
            }
        }
        result(errors)
    }
}

/// Params of `aws.ebs.delete-volume`: the targets of [`FixParams`], and whether to take a
/// snapshot of each volume first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DeleteVolumeParams {
    /// The volumes.
    #[serde(flatten)]
    pub target: FixParams,
    /// Take a snapshot of each volume before deleting it (tagged `pincher:deleted-volume`).
    pub snapshot: bool,
}

impl Default for DeleteVolumeParams {
    fn default() -> Self {
        Self {
            target: FixParams::default(),
            snapshot: true,
        }
    }
}

impl Params for DeleteVolumeParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = PowerParams::QUERY_ALIASES;

    fn refine_schema(schema: &mut serde_json::Value) {
        FixParams::refine_schema(schema);
    }

    fn validate(&self) -> Result<(), ValidationErrors> {
        self.target.validate()
    }
}

/// How an Elastic IP or an EBS volume is found, judged and changed.
trait Kind: Send + Sync + 'static {
    /// The savings finding this fix resolves.
    const FINDING: FindingKind;

    /// Every such resource of one account × region.
    fn list(
        part: &Part,
    ) -> impl std::future::Future<Output = Result<Vec<Fixable>, crate::plugins::aws::AwsError>> + Send;

    /// What a resource in `state`, attached to `attached_to`, needs.
    fn judge(state: &str, attached_to: Option<&str>) -> Step;
}

/// Elastic IPs.
pub struct Addresses;

impl Kind for Addresses {
    const FINDING: FindingKind = FindingKind::IdleAddress;

    async fn list(part: &Part) -> Result<Vec<Fixable>, crate::plugins::aws::AwsError> {
        fixes::addresses_in(part).await
    }

    fn judge(state: &str, attached_to: Option<&str>) -> Step {
        match (state, attached_to) {
            ("unassociated", _) => Step::Switch,
            (_, Some(to)) => Step::Fail(format!(
                "the address is associated with {to}; disassociate it first"
            )),
            (state, None) => Step::Fail(format!("the address is {state}")),
        }
    }
}

/// EBS volumes.
pub struct Volumes;

impl Kind for Volumes {
    const FINDING: FindingKind = FindingKind::UnattachedVolume;

    async fn list(part: &Part) -> Result<Vec<Fixable>, crate::plugins::aws::AwsError> {
        fixes::volumes_in(part).await
    }

    fn judge(state: &str, attached_to: Option<&str>) -> Step {
        match (state, attached_to) {
            ("available", _) => Step::Switch,
            ("deleting" | "deleted", _) => Step::Nothing,
            (_, Some(to)) => Step::Fail(format!(
                "the volume is attached to {to}; only unattached volumes are deleted"
            )),
            (state, None) => Step::Fail(format!("the volume is {state}")),
        }
    }
}

/// Finds resources of kind `K`: read directly, or as the savings report's findings.
async fn find<K: Kind>(
    ctx: &Context,
    wanted: &Wanted<'_>,
    matcher: &ServiceMatcher,
    progress: &dyn Progress,
) -> Result<Found, ActionError> {
    let aws = ctx.aws().await;
    let targets = wanted.selection.targets();
    let found = aws
        .fan_out(&targets, progress, |part| async move {
            let listed = K::list(&part).await?;
            Ok(listed
                .into_iter()
                .map(|fixable| (part.account.clone(), part.region.clone(), fixable))
                .collect::<Vec<_>>())
        })
        .await?;
    let selected = |fixable: &Fixable| {
        (wanted.ids.is_empty() || wanted.ids.contains(&fixable.id))
            && wanted
                .tags
                .iter()
                .all(|(k, v)| fixable.tags.get(k) == Some(v))
            && wanted.service.as_ref().is_none_or(|(_, service_tags)| {
                service_tags
                    .iter()
                    .all(|(k, v)| fixable.tags.get(k) == Some(v))
            })
    };
    // With `findings`, only what the savings report calls waste of this kind, old enough.
    let findings = match wanted.findings {
        Some(min_age) => {
            let prices = Prices::load(ctx.settings.aws.prices_file.as_deref())
                .map_err(|e| ActionError::NotConfigured(e.to_string()))?;
            let query = SavingsQuery {
                targets: targets.clone(),
                kinds: vec![K::FINDING],
                tags: Vec::new(),
                service: None,
                thresholds: Thresholds::from(&ctx.settings.savings),
            };
            let report = savings::savings_report(aws, &query, matcher, &prices, progress).await?;
            Some(
                report
                    .rows
                    .into_iter()
                    .filter(|f| savings::old_enough(f.age_days, i64::from(min_age)))
                    .map(|f| (f.account, f.region, f.resource_id))
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    let candidates = found
        .rows
        .into_iter()
        .filter(|(account, region, fixable)| {
            selected(fixable)
                && findings.as_ref().is_none_or(|waste| {
                    waste
                        .iter()
                        .any(|(a, r, id)| a == account && r == region && id == &fixable.id)
                })
        })
        .map(|(account, region, fixable)| Candidate {
            account,
            region,
            state: fixable.state,
            id: fixable.id,
            tags: fixable.tags,
            cluster: None,
            attached_to: fixable.attached_to,
        })
        .collect();
    Ok(Found {
        candidates,
        errors: found.errors,
        attempted: found.attempted,
    })
}

impl Resource for Addresses {
    type Change = ();

    async fn find(
        ctx: &Context,
        wanted: &Wanted<'_>,
        matcher: &ServiceMatcher,
        progress: &dyn Progress,
    ) -> Result<Found, ActionError> {
        find::<Self>(ctx, wanted, matcher, progress).await
    }

    fn step(candidate: &Candidate, (): ()) -> Step {
        Self::judge(&candidate.state, candidate.attached_to.as_deref())
    }

    async fn apply(
        config: &SdkConfig,
        ids: &[String],
        (): (),
        dry_run: bool,
    ) -> Vec<(String, Switched)> {
        fixes::release_addresses(config, ids, dry_run).await
    }
}

impl Resource for Volumes {
    /// Whether to take a snapshot first.
    type Change = bool;

    async fn find(
        ctx: &Context,
        wanted: &Wanted<'_>,
        matcher: &ServiceMatcher,
        progress: &dyn Progress,
    ) -> Result<Found, ActionError> {
        find::<Self>(ctx, wanted, matcher, progress).await
    }

    fn step(candidate: &Candidate, _snapshot: bool) -> Step {
        Self::judge(&candidate.state, candidate.attached_to.as_deref())
    }

    async fn apply(
        config: &SdkConfig,
        ids: &[String],
        snapshot: bool,
        dry_run: bool,
    ) -> Vec<(String, Switched)> {
        fixes::delete_volumes(config, ids, snapshot, dry_run).await
    }

    fn note(snapshot: bool) -> Option<&'static str> {
        (!snapshot).then_some("no snapshot was asked for: the data is gone")
    }
}

/// Releases Elastic IPs.
pub struct ReleaseAddress;

impl Action for ReleaseAddress {
    const NAME: &'static str = "aws.ec2.release-address";
    const SUMMARY: &'static str = "Release the Elastic IPs selected by ids, tags, service or \
                                   idle-address findings (only unassociated ones)";
    const CHANGES: bool = true;
    type Params = FixParams;
    type Outcome = PowerOutcome;

    async fn run(
        ctx: &Context,
        params: &FixParams,
        env: &RunEnv<'_>,
    ) -> Result<PowerOutcome, ActionError> {
        run::<Addresses>(ctx, Self::NAME, params.selecting(), (), env).await
    }

    fn assess(outcome: &PowerOutcome) -> Assessment {
        outcome.assess()
    }
}

/// Deletes EBS volumes, each after a snapshot unless told otherwise.
pub struct DeleteVolume;

impl Action for DeleteVolume {
    const NAME: &'static str = "aws.ebs.delete-volume";
    const SUMMARY: &'static str = "Delete the EBS volumes selected by ids, tags, service or \
                                   unattached-volume findings (only unattached ones), each \
                                   after a snapshot by default";
    const CHANGES: bool = true;
    type Params = DeleteVolumeParams;
    type Outcome = PowerOutcome;

    async fn run(
        ctx: &Context,
        params: &DeleteVolumeParams,
        env: &RunEnv<'_>,
    ) -> Result<PowerOutcome, ActionError> {
        run::<Volumes>(
            ctx,
            Self::NAME,
            params.target.selecting(),
            params.snapshot,
            env,
        )
        .await
    }

    fn assess(outcome: &PowerOutcome) -> Assessment {
        outcome.assess()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unattached_resources_are_changed() {
        assert_eq!(Volumes::judge("available", None), Step::Switch);
        assert!(matches!(
            Volumes::judge("in-use", Some("i-1")),
            Step::Fail(reason) if reason.contains("attached to i-1")
        ));
        assert_eq!(Volumes::judge("deleted", None), Step::Nothing);
        assert_eq!(Addresses::judge("unassociated", None), Step::Switch);
        assert!(matches!(
            Addresses::judge("associated", Some("i-2")),
            Step::Fail(reason) if reason.contains("associated with i-2")
        ));
    }

    #[test]
    fn findings_select_on_their_own_and_min_age_needs_them() {
        let by_findings = FixParams {
            findings: true,
            min_age_days: Some(30),
            ..FixParams::default()
        };
        assert!(by_findings.validate().is_ok());
        let nothing = FixParams::default().validate().expect_err("empty");
        assert!(nothing.0.iter().any(|e| e.field == "ids"));
        let stray = FixParams {
            target: PowerParams {
                ids: vec!["vol-1".into()],
                ..PowerParams::default()
            },
            min_age_days: Some(3),
            ..FixParams::default()
        };
        let errors = stray.validate().expect_err("min_age_days without findings");
        assert!(errors.0.iter().any(|e| e.field == "min_age_days"));
        let too_old = FixParams {
            findings: true,
            min_age_days: Some(5000),
            ..FixParams::default()
        };
        assert!(too_old.validate().is_err());
    }
}
