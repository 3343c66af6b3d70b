//! `opsmanager.backup`: each group's automation configuration saved to the backup store as
//! `{version}-{md5}.json` when it changed, and each group's part recorded for the backup
//! freshness metrics.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::params::result;
use super::{Action, ActionError, Assessment, Params, RunEnv};
use crate::app::Context;
use crate::db::backups::{self as backup_runs, BackupRun};
use crate::domain::run::{TargetOutcome, TargetResult};
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::NoProgress;
use crate::plugins::opsmanager::backup::{back_up_groups, resolve_groups};
use crate::plugins::opsmanager::{BackupOutcome, GroupBackup, GroupId, OpsManagerError};
use crate::report::Completeness;

/// Params of `opsmanager.backup`. With no groups and no `all_groups`, the groups of
/// `opsmanager.group_ids` are backed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BackupParams {
    /// Group (project) ids to back up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline, value_type = Vec<String>, pattern = "^[A-Za-z0-9]{1,64}$")]
    pub groups: Vec<String>,
    /// Back up every group the API key can see.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_groups: bool,
}

impl Params for BackupParams {
    fn refine_schema(schema: &mut serde_json::Value) {
        super::params::refine::exclusive(schema, "all_groups", "groups");
    }

    const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[("group", "groups")];

    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors: Vec<FieldError> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                GroupId::parse(id)
                    .err()
                    .map(|e| FieldError::new(format!("groups[{i}]"), e.to_string()))
            })
            .collect();
        if self.all_groups && !self.groups.is_empty() {
            errors.push(FieldError::new(
                "all_groups",
                "give either all_groups or groups, not both",
            ));
        }
        result(errors)
    }
}

/// Counts of a backup run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupSummary {
    /// Groups whose configuration was written.
    pub stored: usize,
    /// Groups whose configuration was already stored.
    pub unchanged: usize,
    /// Groups that could not be backed up.
    pub failed: usize,
}

/// What happened to each group. Its serde form is the JSON contract of `pincher opsmanager
/// backup --output json` and of a backup run's `output`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupOutcomes {
    /// `complete`, `partial` or `failed`.
    pub completeness: Completeness,
    /// One result per group, in group id order (empty in a dry run).
    pub results: Vec<GroupBackup>,
    /// Counts by outcome.
    pub summary: BackupSummary,
    /// The groups a dry run would back up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<GroupId>,
    /// Why the groups' results could not be recorded for the freshness metrics, when they
    /// could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
    /// Ids that are not group ids (from Ops Manager's group list or the settings), each
    /// named with why; the valid groups were still backed up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GroupError>,
}

/// A group id that could not be backed up at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupError {
    /// The id as it was given (escaped when shown).
    pub group: String,
    /// Why.
    pub error: String,
}

impl BackupOutcomes {
    fn of(results: Vec<GroupBackup>) -> Self {
        let count = |o: BackupOutcome| results.iter().filter(|r| r.outcome == o).count();
        let summary = BackupSummary {
            stored: count(BackupOutcome::Stored),
            unchanged: count(BackupOutcome::Unchanged),
            failed: count(BackupOutcome::Failed),
        };
        let completeness = if summary.failed == 0 {
            Completeness::Complete
        } else if summary.failed < results.len() {
            Completeness::Partial
        } else {
            Completeness::Failed
        };
        Self {
            completeness,
            results,
            summary,
            planned: Vec::new(),
            record_error: None,
            errors: Vec::new(),
        }
    }
}

/// The Ops Manager backup.
pub struct OpsManagerBackup;

impl Action for OpsManagerBackup {
    const NAME: &'static str = "opsmanager.backup";
    const SUMMARY: &'static str = "Back up each group's Ops Manager automation configuration as \
                                  {version}-{md5}.json when it changed";
    const CHANGES: bool = true;
    type Params = BackupParams;
    type Outcome = BackupOutcomes;

    async fn run(
        ctx: &Context,
        params: &BackupParams,
        env: &RunEnv<'_>,
    ) -> Result<Self::Outcome, ActionError> {
        let settings = &ctx.settings.opsmanager;
        let client = ctx.opsmanager().await.map_err(unusable)?;
        let resolved = resolve_groups(
            client,
            &params.groups,
            params.all_groups,
            &settings.group_ids,
        )
        .await
        .map_err(|e| match e {
            OpsManagerError::NotConfigured(what) => ActionError::NotConfigured(format!(
                "no groups to back up: name them (groups), give all_groups, or set {what}"
            )),
            e => unusable(e),
        })?;
        let errors: Vec<GroupError> = resolved
            .rejected
            .into_iter()
            .map(|(group, error)| {
                tracing::warn!(group = %group.escape_debug(), %error, "not a group id; skipped");
                GroupError { group, error }
            })
            .collect();
        let groups = resolved.groups;
        if env.dry_run {
            return Ok(BackupOutcomes {
                planned: groups,
                errors,
                ..BackupOutcomes::of(Vec::new())
            });
        }
        let results = back_up_groups(
            client,
            ctx.backup_store().await,
            &groups,
            settings.concurrency,
            Arc::new(NoProgress),
        )
        .await;
        let mut outcomes = BackupOutcomes::of(results);
        if !errors.is_empty() {
            outcomes.completeness = if outcomes.summary.stored + outcomes.summary.unchanged > 0 {
                Completeness::Partial
            } else {
                Completeness::Failed
            };
            outcomes.errors = errors;
        }
        for backup in &outcomes.results {
            if let Err(e) = backup_runs::record(&ctx.db, &recorded(backup)).await {
                tracing::warn!(error = %e, "a group's backup could not be recorded");
                outcomes.record_error = Some(e.to_string());
                break;
            }
        }
        Ok(outcomes)
    }

    fn assess(outcome: &Self::Outcome) -> Assessment {
        let planned = outcome.planned.iter().map(|group| TargetResult {
            target: group.to_string(),
            account: None,
            region: None,
            result: TargetOutcome::WouldChange,
            state_before: None,
            state_after: None,
            reason: None,
        });
        let done = outcome.results.iter().map(|backup| TargetResult {
            target: backup.group_id.to_string(),
            account: None,
            region: None,
            result: match backup.outcome {
                BackupOutcome::Stored => TargetOutcome::Changed,
                BackupOutcome::Unchanged => TargetOutcome::Unchanged,
                BackupOutcome::Failed => TargetOutcome::Failed,
            },
            state_before: None,
            state_after: backup.version.map(|v| format!("version {v}")),
            reason: backup.error.clone(),
        });
        let rejected = outcome.errors.iter().map(|e| TargetResult {
            target: e.group.clone(),
            account: None,
            region: None,
            result: TargetOutcome::Failed,
            state_before: None,
            state_after: None,
            reason: Some(e.error.clone()),
        });
        Assessment::of_targets(planned.chain(done).chain(rejected).collect())
    }
}

fn unusable(e: OpsManagerError) -> ActionError {
    match e {
        OpsManagerError::NotConfigured(_) => ActionError::NotConfigured(e.to_string()),
        OpsManagerError::InvalidGroupId(_) => ActionError::field("groups", e.to_string()),
        e => ActionError::Unavailable(e.to_string()),
    }
}

/// One group's part of a run, as the backup-runs table keeps it.
fn recorded(backup: &GroupBackup) -> BackupRun {
    BackupRun {
        group_id: backup.group_id.to_string(),
        version: backup.version,
        md5: backup.md5.clone(),
        path: backup.path.clone(),
        bytes: backup.bytes.and_then(|b| i64::try_from(b).ok()),
        outcome: backup.outcome.as_str().to_owned(),
        error: backup.error.clone(),
        duration_ms: i64::try_from(backup.duration_ms).unwrap_or(i64::MAX),
        started_at: backup.started_at,
    }
}
