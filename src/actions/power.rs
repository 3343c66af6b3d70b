//! What every action that changes cloud resources shares — stopping and starting EC2 and RDS
//! instances, and the savings fixes: a selection that must name something (never
//! everything), the protect tag, the `max_targets` bound, approval before any change, a dry
//! run, and one result per target with every change logged with its actor.

use std::collections::BTreeMap;
use std::future::Future;

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};

use super::params::{
    SERVICE_KEY, Selection, check_count, check_service, check_tag_filters, distinct, refine, result,
};
use super::{Action, ActionError, Assessment, Params, RunEnv, registered};
use crate::app::Context;
use crate::domain::run::{RunOutcome, TargetOutcome, TargetResult};
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::Progress;
use crate::plugins::aws::{Power, ServiceMatcher, Switched};
use crate::report::ReportError;

/// Targets changed by one run when `max_targets` is not given.
pub const DEFAULT_MAX_TARGETS: u32 = 50;

/// Params of `aws.ec2.stop|start` and `aws.rds.stop|start` (and the targets of the savings
/// fixes). At least one of `ids`, `tags` and `service` must be given: an empty selection is
/// refused, never taken as everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PowerParams {
    /// Resource ids: instance ids (`i-…`) or DB instance identifiers for stop and start,
    /// allocation ids (`eipalloc-…`) or volume ids (`vol-…`) for the savings fixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline, value_type = Vec<String>, pattern = "^[A-Za-z0-9-]{1,255}$")]
    pub ids: Vec<String>,
    /// Tags the resources must all carry, `{"KEY": "VALUE"}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A registered service (name or id): its resources, found by its tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Accounts and regions.
    #[serde(flatten)]
    pub selection: Selection,
    /// The run is refused when more targets than this would change.
    #[schema(minimum = 1)]
    pub max_targets: u32,
}

impl Default for PowerParams {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            tags: BTreeMap::new(),
            service: None,
            selection: Selection::default(),
            max_targets: DEFAULT_MAX_TARGETS,
        }
    }
}

impl Params for PowerParams {
    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[
        ("id", "ids"),
        ("tag", "tags"),
        ("region", "regions"),
        ("account", "accounts"),
    ];

    fn refine_schema(schema: &mut serde_json::Value) {
        Self::refine_fields(schema);
        // An empty selection is refused, never taken as everything.
        refine::add_rule(
            schema,
            serde_json::json!({"anyOf": [
                {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
                {"required": ["tags"], "properties": {"tags": {"minProperties": 1}}},
                {"required": ["service"], "properties": {"service": {"type": "string"}}}
            ]}),
        );
    }

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.check(true, &mut errors);
        result(errors)
    }
}

impl PowerParams {
    /// Refines the schema of every field, leaving out the rule that something be selected.
    pub fn refine_fields(schema: &mut serde_json::Value) {
        let limits = crate::config::limits::current();
        Selection::refine_schema(schema);
        refine::set(schema, "ids", "maxItems", limits.ids.into());
        refine::set(
            schema,
            "max_targets",
            "maximum",
            serde_json::Value::from(u32::MAX),
        );
        if let Some(max_targets) = refine::property(schema, "max_targets") {
            max_targets.remove("format");
        }
        refine::set(schema, "tags", "maxProperties", limits.tag_filters.into());
        refine::set(
            schema,
            "tags",
            "propertyNames",
            serde_json::json!({"type": "string", "minLength": 1, "maxLength": 128}),
        );
        refine::set(
            schema,
            "tags",
            "additionalProperties",
            serde_json::json!({"type": "string", "maxLength": 256}),
        );
        refine::set(schema, "service", "pattern", SERVICE_KEY.into());
    }

    /// Checks every field; with `need_selection`, one of ids, tags and service must be given.
    pub fn check(&self, need_selection: bool, errors: &mut Vec<FieldError>) {
        if need_selection && self.ids.is_empty() && self.tags.is_empty() && self.service.is_none() {
            errors.push(FieldError::new(
                "ids",
                "select what to change with ids, tags or service; an empty selection is \
                 refused, never taken as everything",
            ));
        }
        for (i, id) in self.ids.iter().enumerate() {
            let ok = (1..=255).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                errors.push(FieldError::new(
                    format!("ids[{i}]"),
                    format!("{id:?} is not a resource id (letters, digits and -)"),
                ));
            }
        }
        for (key, value) in &self.tags {
            if key.is_empty() || key.chars().count() > 128 {
                errors.push(FieldError::new(
                    format!("tags.{key}"),
                    "tag keys are 1 to 128 characters",
                ));
            }
            if value.chars().count() > 256 {
                errors.push(FieldError::new(
                    format!("tags.{key}"),
                    "tag values are at most 256 characters",
                ));
            }
        }
        if self.max_targets == 0 {
            errors.push(FieldError::new("max_targets", "expected at least 1"));
        }
        let limits = crate::config::limits::current();
        check_count(
            "ids",
            "ids",
            "limits.ids",
            self.ids.len(),
            limits.ids,
            errors,
        );
        check_tag_filters("tags", self.tags.len(), errors);
        check_service("service", self.service.as_deref(), errors);
        self.selection.check(errors);
    }

    /// The selection these params make.
    pub fn selecting(&self) -> Selecting<'_> {
        Selecting {
            ids: &self.ids,
            tags: &self.tags,
            service: self.service.as_deref(),
            selection: &self.selection,
            max_targets: self.max_targets,
            findings: None,
        }
    }
}

/// What a changing action's params select, and how many changes they allow.
#[derive(Debug, Clone, Copy)]
pub struct Selecting<'a> {
    /// Resource ids.
    pub ids: &'a [String],
    /// Tags the resources must all carry.
    pub tags: &'a BTreeMap<String, String>,
    /// A registered service (name or id).
    pub service: Option<&'a str>,
    /// Accounts and regions.
    pub selection: &'a Selection,
    /// The run is refused when more targets than this would change.
    pub max_targets: u32,
    /// The savings findings the action fixes, at least this many days old (`None`: not
    /// selected by findings).
    pub findings: Option<u32>,
}

/// What [`Resource::find`] looks for: a [`Selecting`] with the service resolved.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// Accounts and regions.
    pub selection: &'a Selection,
    /// Resource ids, each once.
    pub ids: Vec<String>,
    /// Tags the resources must all carry.
    pub tags: &'a BTreeMap<String, String>,
    /// The registered service (name, tags) whose resources are wanted.
    pub service: Option<(String, BTreeMap<String, String>)>,
    /// Only resources the savings report finds, at least this many days old.
    pub findings: Option<u32>,
}

/// A resource the selection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Instance id or DB instance identifier.
    pub id: String,
    /// Its state now.
    pub state: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The Aurora cluster it belongs to, for DB instances.
    pub cluster: Option<String>,
    /// What it is attached to, for volumes and addresses (an instance or interface id).
    pub attached_to: Option<String>,
}

/// What the selection found, and the parts that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The resources.
    pub candidates: Vec<Candidate>,
    /// Accounts or regions that could not be read.
    pub errors: Vec<ReportError>,
    /// Parts attempted.
    pub attempted: usize,
}

/// What a candidate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// To be switched.
    Switch,
    /// Already in the wanted state.
    Nothing,
    /// Left alone on purpose, for this reason.
    Skip(String),
    /// Cannot be switched, for this reason.
    Fail(String),
}

/// How one kind of resource is found and changed.
pub trait Resource: Send + Sync + 'static {
    /// What is done to each target ([`Power`] for stop and start).
    type Change: Copy + Send + Sync + 'static;

    /// The resources `wanted` names: by ids, tags (all must match), the service (name and
    /// tags) and findings, in the selected accounts and regions.
    fn find(
        ctx: &Context,
        wanted: &Wanted<'_>,
        matcher: &ServiceMatcher,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<Found, ActionError>> + Send;

    /// What `candidate` needs for `change`.
    fn step(candidate: &Candidate, change: Self::Change) -> Step;

    /// Makes `change` to `ids` (all in the account and region of `config`), or with
    /// `dry_run` asks AWS whether it would be allowed.
    fn apply(
        config: &SdkConfig,
        ids: &[String],
        change: Self::Change,
        dry_run: bool,
    ) -> impl Future<Output = Vec<(String, Switched)>> + Send;

    /// A note for a target that is (or would be) changed this way.
    fn note(change: Self::Change) -> Option<&'static str> {
        let _ = change;
        None
    }
}

/// Resources that are stopped and started.
pub trait Switchable: Resource<Change = Power> {
    /// The name of the action that stops it.
    const STOP: &'static str;
    /// What stopping it does, in one line.
    const STOP_SUMMARY: &'static str;
    /// The name of the action that starts it.
    const START: &'static str;
    /// What starting it does, in one line.
    const START_SUMMARY: &'static str;
}

/// The action that stops (`STOP`) or starts resources `R`.
pub struct Switch<R, const STOP: bool>(std::marker::PhantomData<R>);

impl<R: Switchable, const STOP: bool> Action for Switch<R, STOP> {
    const NAME: &'static str = if STOP { R::STOP } else { R::START };
    const SUMMARY: &'static str = if STOP {
        R::STOP_SUMMARY
    } else {
        R::START_SUMMARY
    };
    const CHANGES: bool = true;
    type Params = PowerParams;
    type Outcome = PowerOutcome;

    async fn run(
        ctx: &Context,
        params: &PowerParams,
        env: &RunEnv<'_>,
    ) -> Result<PowerOutcome, ActionError> {
        let power = if STOP { Power::Stop } else { Power::Start };
        run::<R>(ctx, Self::NAME, params.selecting(), power, env).await
    }

    fn assess(outcome: &PowerOutcome) -> Assessment {
        outcome.assess()
    }
}

/// The result of a stop, a start or a fix. Its serde form is the JSON contract of these
/// actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerOutcome {
    /// Whether it was a dry run (nothing changed).
    pub dry_run: bool,
    /// One result per target, by account, region and id.
    pub targets: Vec<TargetResult>,
    /// Accounts or regions that could not be read (their resources are not in `targets`).
    pub errors: Vec<ReportError>,
    /// Targets by result.
    pub summary: BTreeMap<&'static str, usize>,
}

impl PowerOutcome {
    /// How the run went: failed when no part could be read or every target failed, partial
    /// when some did.
    pub fn assess(&self) -> Assessment {
        let mut assessment = Assessment::of_targets(self.targets.clone());
        if !self.errors.is_empty() && assessment.outcome == RunOutcome::Ok {
            assessment.outcome = if self.targets.is_empty() {
                RunOutcome::Failed
            } else {
                RunOutcome::Partial
            };
        }
        assessment
    }
}

fn target(candidate: &Candidate, result: TargetOutcome, reason: Option<String>) -> TargetResult {
    TargetResult {
        target: candidate.id.clone(),
        account: Some(candidate.account.clone()),
        region: Some(candidate.region.clone()),
        result,
        state_before: Some(candidate.state.clone()),
        state_after: None,
        reason,
    }
}

/// Makes `change` to what `params` select: finds the resources, leaves protected ones alone,
/// refuses more than `max_targets` changes, asks for approval, then changes each account ×
/// region's targets together. Ids that are not found are failed targets.
pub async fn run<R: Resource>(
    ctx: &Context,
    action: &'static str,
    params: Selecting<'_>,
    change: R::Change,
    env: &RunEnv<'_>,
) -> Result<PowerOutcome, ActionError> {
    let service = match params.service {
        Some(key) => {
            let service = registered::named(ctx, "service", key).await?;
            if service.tags.is_empty() {
                return Err(ActionError::field(
                    "service",
                    format!(
                        "service {:?} has no tags, so no resource can be matched to it",
                        service.name
                    ),
                ));
            }
            Some((service.name, service.tags))
        }
        None => None,
    };
    let matcher = registered::matcher(ctx).await?;
    let wanted = Wanted {
        selection: params.selection,
        ids: distinct(params.ids),
        tags: params.tags,
        service,
        findings: params.findings,
    };
    let found = R::find(ctx, &wanted, &matcher, env.progress).await?;
    if found.attempted > 0 && found.errors.len() >= found.attempted {
        let reasons: Vec<String> = found
            .errors
            .iter()
            .map(crate::render::describe_error)
            .collect();
        return Err(ActionError::Unavailable(format!(
            "no account or region could be read: {}",
            reasons.join("; ")
        )));
    }

    let (protect_key, protect_value) = ctx.settings.actions.protect();
    let mut results = Vec::new();
    let mut to_switch = Vec::new();
    for candidate in &found.candidates {
        let step = if candidate.tags.get(protect_key).map(String::as_str) == Some(protect_value) {
            Step::Skip(format!(
                "protected by the tag {}",
                ctx.settings.actions.protect_tag
            ))
        } else {
            R::step(candidate, change)
        };
        match step {
            Step::Switch => to_switch.push(candidate),
            Step::Nothing => {
                let mut unchanged = target(candidate, TargetOutcome::Unchanged, None);
                unchanged.state_after = unchanged.state_before.clone();
                results.push(unchanged);
            }
            Step::Skip(reason) => {
                results.push(target(candidate, TargetOutcome::Skipped, Some(reason)))
            }
            Step::Fail(reason) => {
                results.push(target(candidate, TargetOutcome::Failed, Some(reason)))
            }
        }
    }
    for id in &wanted.ids {
        if !found.candidates.iter().any(|c| &c.id == id) {
            results.push(TargetResult {
                target: id.clone(),
                account: None,
                region: None,
                result: TargetOutcome::Failed,
                state_before: None,
                state_after: None,
                reason: Some(
                    "not found in the selected accounts and regions with the given selection"
                        .into(),
                ),
            });
        }
    }
    if to_switch.len() > params.max_targets as usize {
        return Err(ActionError::Refused(format!(
            "{} resources would change, more than max_targets ({}); nothing was changed. \
             Narrow the selection or raise max_targets",
            to_switch.len(),
            params.max_targets
        )));
    }
    let note = R::note(change).map(str::to_owned);
    if !env.dry_run && !to_switch.is_empty() {
        let plan: Vec<TargetResult> = to_switch
            .iter()
            .map(|c| target(c, TargetOutcome::WouldChange, note.clone()))
            .collect();
        if !env.approval.approve(action, &plan).await {
            return Err(ActionError::Declined);
        }
    }

    let mut groups: BTreeMap<(&str, &str), Vec<&Candidate>> = BTreeMap::new();
    for candidate in to_switch {
        groups
            .entry((candidate.account.as_str(), candidate.region.as_str()))
            .or_default()
            .push(candidate);
    }
    let current = if groups.is_empty() {
        String::new()
    } else {
        ctx.aws().await.current_account().await?
    };
    for ((account, region), members) in groups {
        let switched = match ctx.aws().await.part_config(account, region, &current).await {
            Ok(config) => {
                let ids: Vec<String> = members.iter().map(|c| c.id.clone()).collect();
                R::apply(&config, &ids, change, env.dry_run).await
            }
            Err(e) => members
                .iter()
                .map(|c| (c.id.clone(), Switched::Failed(e.to_string())))
                .collect(),
        };
        for candidate in members {
            let outcome = switched
                .iter()
                .find(|(id, _)| id == &candidate.id)
                .map_or_else(
                    || Switched::Failed("AWS did not report this resource in its answer".into()),
                    |(_, outcome)| outcome.clone(),
                );
            let result = match outcome {
                Switched::Changed(state) => TargetResult {
                    state_after: state,
                    ..target(candidate, TargetOutcome::Changed, note.clone())
                },
                Switched::Done { state, detail } => TargetResult {
                    state_after: state,
                    ..target(candidate, TargetOutcome::Changed, Some(detail))
                },
                Switched::Allowed => target(candidate, TargetOutcome::WouldChange, note.clone()),
                Switched::Failed(reason) => target(candidate, TargetOutcome::Failed, Some(reason)),
            };
            tracing::info!(
                action,
                actor = env.actor,
                dry_run = env.dry_run,
                target = %result.target,
                account = %candidate.account,
                region = %candidate.region,
                result = result.result.as_str(),
                reason = result.reason.as_deref().unwrap_or_default(),
                "action target"
            );
            results.push(result);
        }
    }
    results.sort_by(|a, b| {
        (&a.account, &a.region, &a.target).cmp(&(&b.account, &b.region, &b.target))
    });
    let mut summary = BTreeMap::new();
    for result in &results {
        *summary.entry(result.result.as_str()).or_default() += 1;
    }
    Ok(PowerOutcome {
        dry_run: env.dry_run,
        targets: results,
        errors: found.errors,
        summary,
    })
}
