//! Action runs: who ran which action with which params, how it ended, and what happened to
//! each target. Recorded for every run that changes something or was asked to be recorded.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A `pincher` command.
    Cli,
    /// `POST /actions/{name}/runs` (or an alias of it).
    Http,
    /// A step of a rule.
    Rule,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Self; 3] = [Self::Cli, Self::Http, Self::Rule];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Http => "http",
            Self::Rule => "rule",
        }
    }

    /// Parses a stored or given name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// How a run ended (or that it has not ended yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Still running.
    Running,
    /// Everything asked for was done.
    Ok,
    /// Some targets or parts failed; the others were done.
    Partial,
    /// Nothing useful was done.
    Failed,
    /// The process stopped before the run finished; what it did is unknown.
    Abandoned,
}

impl RunOutcome {
    /// Every outcome.
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Ok,
        Self::Partial,
        Self::Failed,
        Self::Abandoned,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }

    /// Parses a stored or given name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// The outcome of a run whose targets ended `results`: ok when none failed, failed when
    /// all did, partial otherwise. A run without targets is ok.
    pub fn of_targets(results: &[TargetResult]) -> Self {
        let failed = results
            .iter()
            .filter(|r| r.result == TargetOutcome::Failed)
            .count();
        if failed == 0 {
            Self::Ok
        } else if failed == results.len() {
            Self::Failed
        } else {
            Self::Partial
        }
    }
}

/// What happened to one target of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// The target was changed (stopped, started, backed up).
    Changed,
    /// The target was already as asked; nothing was done.
    Unchanged,
    /// The target was left alone on purpose (protected, or not changeable this way); the
    /// reason says why.
    Skipped,
    /// The change was asked for and refused or failed; the reason is the remote system's.
    Failed,
    /// A dry run: the change would be made and is allowed.
    WouldChange,
}

impl TargetOutcome {
    /// Every target outcome.
    pub const ALL: [Self; 5] = [
        Self::Changed,
        Self::Unchanged,
        Self::Skipped,
        Self::Failed,
        Self::WouldChange,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::WouldChange => "would_change",
        }
    }
}

/// The result for one target (an instance, a DB instance, an Ops Manager group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetResult {
    /// The target's id: `i-…`, a DB instance identifier, a group id.
    pub target: String,
    /// Account of the target, for cloud targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Region of the target, for cloud targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// What happened.
    pub result: TargetOutcome,
    /// The target's state before the run, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before: Option<String>,
    /// The target's state after the run, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_after: Option<String>,
    /// Why it was skipped or failed, or a note about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One recorded run. Its serde form is the JSON contract of `/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    /// Identifier (UUIDv7: ids sort by start).
    pub id: Uuid,
    /// The action's dotted name, e.g. `aws.ec2.stop`.
    pub action: String,
    /// The params the action ran with.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Where the run came from.
    pub trigger: Trigger,
    /// Who ran it: the API token's name, `cli`, or the rule.
    pub actor: String,
    /// Whether it was a dry run (nothing changed).
    pub dry_run: bool,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended; null while running.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Why it failed as a whole, when it did.
    pub error: Option<String>,
    /// The result for each target.
    pub results: Vec<TargetResult>,
    /// The action's typed outcome (a report, the backup results, …), once finished.
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this action.
    pub action: Option<String>,
    /// Only runs that ended (or are) this way.
    pub outcome: Option<RunOutcome>,
    /// Only runs from here.
    pub trigger: Option<Trigger>,
}
