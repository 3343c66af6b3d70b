//! Rules: ordered steps of actions, run on demand or on a cron schedule in a time zone. A rule
//! document is checked once, on write, step params included (through a [`StepCheck`] that the
//! actions layer provides), so a stored rule is always one that can run.

use std::str::FromStr;

use chrono::TimeZone;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::service::{ServiceKey, ServiceName, contains_nul};
use super::{FieldError, ValidationErrors};

/// Most steps one rule may have.
pub const MAX_STEPS: usize = 50;

/// A schedule must fire within this many days of being written (ten years: every leap day
/// and every weekday-of-a-date combination fires well within it).
const FIRST_FIRE_DAYS: i64 = 3653;

/// What a rule does when a step does not end `ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The remaining steps are not run.
    #[default]
    Stop,
    /// The remaining steps run anyway.
    Continue,
}

impl OnFailure {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Continue => "continue",
        }
    }
}

/// One step: a registered action and its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The action's dotted name, e.g. `aws.ec2.stop`.
    pub action: String,
    /// The action's params, as written (checked against the action's schema on write).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub params: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses a cron expression — 5 fields, or 6 with seconds first, or a macro such as
    /// `@hourly` — in the IANA time zone `zone`. Errors say which of the two is wrong.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, (&'static str, String)> {
        let zone = chrono_tz::Tz::from_str(zone).map_err(|_| {
            (
                "timezone",
                format!("{zone:?} is not an IANA time zone such as Europe/Berlin or UTC"),
            )
        })?;
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err((
                "schedule",
                format!(
                    "expected 5 fields (minute hour day month weekday) or 6 with seconds first, \
                     got {fields}"
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| ("schedule", format!("not a cron expression: {e}")))?;
        let schedule = Self { cron, zone };
        // A schedule that never fires (30 February) would make every search for its next
        // slot run to the end of the calendar, at every scheduler tick.
        let now = OffsetDateTime::now_utc();
        if schedule
            .next_after(now)
            .is_none_or(|next| next > now + time::Duration::days(FIRST_FIRE_DAYS))
        {
            return Err((
                "schedule",
                format!(
                    "{expression:?} does not fire in the next {} years",
                    FIRST_FIRE_DAYS / 365
                ),
            ));
        }
        Ok(schedule)
    }

    /// The first fire time after `after` (not at it), in UTC.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let start = self.zone.from_utc_datetime(&to_chrono(after)?.naive_utc());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        from_chrono(next.with_timezone(&chrono::Utc))
    }

    /// The fire times after `after` up to and including `until`, oldest first, at most
    /// `limit` of them (the newest ones when there are more).
    pub fn slots(
        &self,
        after: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Vec<OffsetDateTime> {
        let mut slots = std::collections::VecDeque::new();
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor) {
            if next > until {
                break;
            }
            if slots.len() == limit {
                slots.pop_front();
            }
            slots.push_back(next);
            cursor = next;
        }
        slots.into()
    }

    /// `t` as the schedule's local time, e.g. `2026-03-30 19:00:00 CEST (+02:00)`.
    pub fn local(&self, t: OffsetDateTime) -> String {
        to_chrono(t).map_or_else(String::new, |t| {
            t.with_timezone(&self.zone)
                .format("%Y-%m-%d %H:%M:%S %Z (%:z)")
                .to_string()
        })
    }

    /// The time between the next two fire times after `now` (for "two periods without a
    /// success").
    pub fn period(&self, now: OffsetDateTime) -> Option<time::Duration> {
        let first = self.next_after(now)?;
        Some(self.next_after(first)? - first)
    }
}

fn to_chrono(t: OffsetDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = i64::try_from(t.unix_timestamp_nanos()).ok()?;
    Some(chrono::DateTime::from_timestamp_nanos(nanos))
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_nanos_opt()?)).ok()
}

/// A stored rule. Its serde form is the JSON contract of `/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rule {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// Unique name: the same rules as a service name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The registered service it belongs to, if any.
    pub service: Option<String>,
    /// Cron expression (5 fields, or 6 with seconds first, or `@hourly` and the like); null
    /// for a rule run on demand only.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in.
    pub timezone: String,
    /// Whether the schedule fires.
    pub enabled: bool,
    /// What happens when a step does not end ok.
    pub on_failure: OnFailure,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Revision, bumped by every write; the basis of the ETag.
    pub revision: i64,
}

impl Rule {
    /// The strong entity tag of this revision.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.revision)
    }

    /// The writable part, as a JSON document (what `rules apply` compares, and the base a
    /// merge patch applies to): the rule without its read-only fields.
    pub fn spec_json(&self) -> Value {
        let mut document = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(fields) = &mut document {
            fields.retain(|field, _| !READ_ONLY_FIELDS.contains(&field.as_str()));
        }
        document
    }

    /// The parsed schedule, when the rule has one (stored rules always parse).
    pub fn parsed_schedule(&self) -> Option<Schedule> {
        Schedule::parse(self.schedule.as_deref()?, &self.timezone).ok()
    }
}

/// Checks one step's action and params; provided by the actions layer, which knows them.
pub trait StepCheck {
    /// Errors of the step, their fields relative to the step (`action`, `params.tags`).
    fn check(&self, action: &str, params: &Value) -> Vec<FieldError>;
}

/// The writable fields of a rule, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    /// The name.
    pub name: ServiceName,
    /// What it is for.
    pub description: String,
    /// The registered service it belongs to.
    pub service: Option<String>,
    /// Cron expression, as written.
    pub schedule: Option<String>,
    /// IANA time zone.
    pub timezone: String,
    /// Whether the schedule fires.
    pub enabled: bool,
    /// What happens when a step does not end ok.
    pub on_failure: OnFailure,
    /// The steps.
    pub steps: Vec<Step>,
}

const FIELDS: &[&str] = &[
    "name",
    "description",
    "service",
    "schedule",
    "timezone",
    "enabled",
    "on_failure",
    "steps",
];
const READ_ONLY_FIELDS: &[&str] = &["id", "created_at", "updated_at", "revision"];

#[derive(Deserialize)]
struct RuleDoc {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    on_failure: Option<OnFailure>,
    #[serde(default)]
    steps: Vec<Step>,
}

impl RuleSpec {
    /// The spec as a JSON document, laid out as [`Rule::spec_json`].
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Parses a rule document, naming every field at fault (`steps[1].params.tags`). Read-only
    /// fields are ignored, so a fetched rule can be sent back as it is.
    pub fn from_json(doc: &Value, steps: &dyn StepCheck) -> Result<Self, ValidationErrors> {
        let Some(object) = doc.as_object() else {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "expected a JSON object",
            )]));
        };
        let mut errors: Vec<FieldError> = object
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()) && !READ_ONLY_FIELDS.contains(&k.as_str()))
            .map(|k| FieldError::new(k.as_str(), "unknown field"))
            .collect();
        if contains_nul(doc) {
            errors.push(FieldError::new(
                "",
                "must not contain NUL (\\u0000) characters",
            ));
        }
        let writable: Map<String, Value> = object
            .iter()
            .filter(|(k, _)| FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parsed: RuleDoc = match serde_path_to_error::deserialize(Value::Object(writable)) {
            Ok(parsed) => parsed,
            Err(e) => {
                let path = e.path().to_string();
                let field = if path == "." { String::new() } else { path };
                errors.push(FieldError::new(field, e.into_inner().to_string()));
                return Err(ValidationErrors(errors));
            }
        };
        let name = ServiceName::parse(&parsed.name)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok();
        let description = parsed.description.unwrap_or_default();
        if description.chars().count() > 4096 {
            errors.push(FieldError::new(
                "description",
                "must be at most 4096 characters",
            ));
        }
        if let Some(service) = &parsed.service
            && let Err(m) = ServiceKey::parse(service)
        {
            errors.push(FieldError::new("service", m));
        }
        let timezone = parsed.timezone.unwrap_or_else(|| "UTC".to_owned());
        match &parsed.schedule {
            Some(expression) => {
                if let Err((field, message)) = Schedule::parse(expression, &timezone) {
                    errors.push(FieldError::new(field, message));
                }
            }
            None => {
                if chrono_tz::Tz::from_str(&timezone).is_err() {
                    errors.push(FieldError::new(
                        "timezone",
                        format!("{timezone:?} is not an IANA time zone such as Europe/Berlin"),
                    ));
                }
            }
        }
        if parsed.steps.is_empty() {
            errors.push(FieldError::new("steps", "a rule needs at least one step"));
        }
        if parsed.steps.len() > MAX_STEPS {
            errors.push(FieldError::new(
                "steps",
                format!("at most {MAX_STEPS} steps, got {}", parsed.steps.len()),
            ));
        }
        for (i, step) in parsed.steps.iter().enumerate() {
            for error in steps.check(&step.action, &step.params) {
                let field = if error.field.is_empty() {
                    format!("steps[{i}]")
                } else {
                    format!("steps[{i}].{}", error.field)
                };
                errors.push(FieldError::new(field, error.message));
            }
        }
        match name {
            Some(name) if errors.is_empty() => Ok(Self {
                name,
                description,
                service: parsed.service,
                schedule: parsed.schedule,
                timezone,
                enabled: parsed.enabled.unwrap_or(true),
                on_failure: parsed.on_failure.unwrap_or_default(),
                steps: parsed.steps,
            }),
            _ => Err(ValidationErrors(errors)),
        }
    }

    /// Applies a JSON Merge Patch (RFC 7396) to `current`'s writable fields and parses the
    /// result.
    pub fn merge_patch(
        current: &Rule,
        patch: &Value,
        steps: &dyn StepCheck,
    ) -> Result<Self, ValidationErrors> {
        if !patch.is_object() {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "a merge patch must be a JSON object",
            )]));
        }
        let mut doc = current.spec_json();
        json_patch::merge(&mut doc, patch);
        Self::from_json(&doc, steps)
    }

    /// Whether the schedule as written differs from `rule`'s (expression, zone or enabled):
    /// a new schedule starts counting its slots from the change.
    pub fn reschedules(&self, rule: &Rule) -> bool {
        self.schedule != rule.schedule
            || self.timezone != rule.timezone
            || self.enabled != rule.enabled
    }
}

/// How a rule run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleTrigger {
    /// Its schedule fired.
    Schedule,
    /// Someone ran it (`POST /rules/{key}/runs`, `pincher rules run`).
    Manual,
}

impl RuleTrigger {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Schedule, Self::Manual]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// How a rule run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleOutcome {
    /// Still running.
    Running,
    /// Every step ended ok.
    Ok,
    /// Some steps failed (or were partial); others ended ok.
    Partial,
    /// No step ended ok.
    Failed,
    /// The process running it stopped (shutdown, or a lease that expired) before it ended.
    Abandoned,
    /// The slot passed while no scheduler could run it (too long ago to catch up, superseded
    /// by a later slot, or the rule's previous run was still going); it was not run.
    Missed,
}

impl RuleOutcome {
    /// Every outcome.
    pub const ALL: [Self; 6] = [
        Self::Running,
        Self::Ok,
        Self::Partial,
        Self::Failed,
        Self::Abandoned,
        Self::Missed,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
            Self::Missed => "missed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// One step of a rule run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRun {
    /// Position in the rule, from 0.
    pub index: usize,
    /// The action.
    pub action: String,
    /// The action run, when the step started one.
    pub run_id: Option<Uuid>,
    /// `running`, `ok`, `partial`, `failed`, `abandoned`, or `skipped` (not run: an earlier
    /// step failed under `on_failure: stop`, or the process was stopping).
    pub outcome: String,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run of a rule. Its serde form is the JSON contract of `GET /rules/{key}/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleRun {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// The rule.
    pub rule_id: Uuid,
    /// The rule's name at the time.
    pub rule: String,
    /// The slot a scheduled run was for; null for a manual run.
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    /// `schedule` or `manual`.
    pub trigger: RuleTrigger,
    /// Who ran it: the scheduler replica, the API token's name or `cli`.
    pub actor: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// When it started (null for a missed slot).
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended.
    pub outcome: RuleOutcome,
    /// Why it failed, was abandoned or missed.
    pub error: Option<String>,
    /// Each step: its action run and outcome.
    pub steps: Vec<StepRun>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    struct AnyStep;

    impl StepCheck for AnyStep {
        fn check(&self, action: &str, params: &Value) -> Vec<FieldError> {
            let mut errors = Vec::new();
            if action != "known.action" {
                errors.push(FieldError::new("action", "no such action"));
            }
            if params.get("tags").is_some_and(|t| !t.is_object()) {
                errors.push(FieldError::new("params.tags", "expected an object"));
            }
            errors
        }
    }

    fn fields(doc: Value) -> Vec<String> {
        match RuleSpec::from_json(&doc, &AnyStep) {
            Ok(spec) => panic!("accepted: {spec:?}"),
            Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn a_rule_is_checked_field_by_field_and_step_by_step() {
        let good = serde_json::json!({
            "name": "office-hours", "schedule": "0 19 * * MON-FRI", "timezone": "Europe/Berlin",
            "steps": [{"action": "known.action", "params": {"tags": {"env": "dev"}}}]
        });
        let spec = RuleSpec::from_json(&good, &AnyStep).expect("valid");
        assert_eq!(spec.on_failure, OnFailure::Stop);
        assert!(spec.enabled);
        assert_eq!(
            fields(serde_json::json!({"name": "x", "steps": [
                {"action": "known.action"},
                {"action": "known.action", "params": {"tags": "env=dev"}},
                {"action": "nope"}
            ]})),
            ["steps[1].params.tags", "steps[2].action"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"name": "x", "schedule": "61 * * * *", "steps": [{"action": "known.action"}]})
            ),
            ["schedule"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"name": "x", "schedule": "* * * * *", "timezone": "Mars/Olympus", "steps": [{"action": "known.action"}]})
            ),
            ["timezone"]
        );
        assert_eq!(
            fields(serde_json::json!({"name": "X", "steps": [], "color": 1})),
            ["color", "name", "steps"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"name": "x", "on_failure": "retry", "steps": [{"action": "known.action"}]})
            ),
            ["on_failure"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"name": "x", "schedule": "* * * *", "steps": [{"action": "known.action"}]})
            ),
            ["schedule"]
        );
    }

    #[test]
    fn five_and_six_field_expressions_and_macros() {
        let every_two_seconds = Schedule::parse("*/2 * * * * *", "UTC").expect("6 fields");
        let t = datetime!(2026-03-01 10:00:01 UTC);
        assert_eq!(
            every_two_seconds.next_after(t),
            Some(datetime!(2026-03-01 10:00:02 UTC))
        );
        let hourly = Schedule::parse("@hourly", "UTC").expect("macro");
        assert_eq!(
            hourly.next_after(t),
            Some(datetime!(2026-03-01 11:00:00 UTC))
        );
        let slots = every_two_seconds.slots(t, datetime!(2026-03-01 10:00:11 UTC), 3);
        assert_eq!(
            slots,
            [
                datetime!(2026-03-01 10:00:06 UTC),
                datetime!(2026-03-01 10:00:08 UTC),
                datetime!(2026-03-01 10:00:10 UTC)
            ],
            "the newest slots, oldest first"
        );
    }

    #[test]
    fn weekday_evenings_in_berlin_follow_summer_time() {
        let evening = Schedule::parse("0 19 * * MON-FRI", "Europe/Berlin").expect("valid");
        // Friday 2026-03-27 19:00 CET is 18:00 UTC; the next is Monday 2026-03-30 19:00 CEST
        // (17:00 UTC), after the clocks went forward on Sunday 29 March.
        assert_eq!(
            evening.next_after(datetime!(2026-03-27 12:00 UTC)),
            Some(datetime!(2026-03-27 18:00 UTC))
        );
        assert_eq!(
            evening.next_after(datetime!(2026-03-27 18:00 UTC)),
            Some(datetime!(2026-03-30 17:00 UTC))
        );
    }

    /// Every fire time of `schedule` on the UTC day `day`.
    fn fires_on(
        schedule: &Schedule,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<OffsetDateTime> {
        schedule.slots(from, to, 100)
    }

    #[test]
    fn a_slot_in_the_spring_forward_gap_runs_once_right_after_it() {
        // Europe/Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist.
        let berlin = Schedule::parse("30 2 * * *", "Europe/Berlin").expect("valid");
        assert_eq!(
            fires_on(
                &berlin,
                datetime!(2026-03-28 12:00 UTC),
                datetime!(2026-03-30 12:00 UTC)
            ),
            [
                datetime!(2026-03-29 01:00 UTC), // 03:00 CEST, the first minute after the gap
                datetime!(2026-03-30 00:30 UTC)  // 02:30 CEST
            ]
        );
        // America/New_York 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let new_york = Schedule::parse("30 2 * * *", "America/New_York").expect("valid");
        assert_eq!(
            fires_on(
                &new_york,
                datetime!(2026-03-07 12:00 UTC),
                datetime!(2026-03-09 12:00 UTC)
            ),
            [
                datetime!(2026-03-08 07:00 UTC), // 03:00 EDT
                datetime!(2026-03-09 06:30 UTC)  // 02:30 EDT
            ]
        );
    }

    #[test]
    fn a_slot_in_the_fall_back_overlap_runs_once() {
        // Europe/Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let berlin = Schedule::parse("30 2 * * *", "Europe/Berlin").expect("valid");
        assert_eq!(
            fires_on(
                &berlin,
                datetime!(2026-10-24 12:00 UTC),
                datetime!(2026-10-26 12:00 UTC)
            ),
            [
                datetime!(2026-10-25 00:30 UTC), // 02:30 CEST, the first pass only
                datetime!(2026-10-26 01:30 UTC)  // 02:30 CET
            ]
        );
        // America/New_York 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 twice.
        let new_york = Schedule::parse("30 1 * * *", "America/New_York").expect("valid");
        assert_eq!(
            fires_on(
                &new_york,
                datetime!(2026-10-31 12:00 UTC),
                datetime!(2026-11-02 12:00 UTC)
            ),
            [
                datetime!(2026-11-01 05:30 UTC), // 01:30 EDT, the first pass only
                datetime!(2026-11-02 06:30 UTC)  // 01:30 EST
            ]
        );
    }
}
