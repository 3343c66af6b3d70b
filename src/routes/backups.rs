//! `/backups/opsmanager`: list the stored Ops Manager automation-config backups, and back up
//! now.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use crate::app::AppState;
use crate::db::backups as runs;
use crate::plugins::NoProgress;
use crate::plugins::opsmanager::backup::{back_up_groups, resolve_groups};
use crate::plugins::opsmanager::{
    BackupEntry, BackupOutcome, GroupBackup, GroupId, OpsManagerClient, OpsManagerError,
};
use crate::report::Completeness;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, back_up_now))
}

/// `GET /backups/opsmanager`: the stored backups and the last successful run of each group.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupList {
    /// Backups by group, newest version first.
    pub items: Vec<BackupEntry>,
    /// When each group was last backed up successfully.
    pub last_success: Vec<runs::LastSuccess>,
}

/// `POST /backups/opsmanager`: what happened to each group.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupRunResult {
    /// `complete`, `partial` or `failed`.
    pub completeness: Completeness,
    /// One result per group, in group id order.
    pub results: Vec<GroupBackup>,
}

struct Query {
    groups: Vec<String>,
    all_groups: bool,
}

fn parse_query(raw: Option<&str>, allow_all: bool) -> Result<Query, ApiError> {
    let mut query = Query {
        groups: Vec::new(),
        all_groups: false,
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "group" => {
                GroupId::parse(&value)
                    .map_err(|e| ApiError::bad_parameter("group", e.to_string()))?;
                query.groups.push(value.into_owned());
            }
            "all_groups" if allow_all => {
                query.all_groups = value
                    .parse()
                    .map_err(|_| ApiError::bad_parameter("all_groups", "expected true or false"))?;
            }
            other => {
                let expected = if allow_all {
                    "unknown parameter; expected group or all_groups"
                } else {
                    "unknown parameter; expected group"
                };
                return Err(ApiError::bad_parameter(other, expected));
            }
        }
    }
    Ok(query)
}

fn upstream(e: OpsManagerError) -> ApiError {
    match e {
        OpsManagerError::InvalidGroupId(_) => ApiError::bad_parameter("group", e.to_string()),
        OpsManagerError::NotConfigured(_) => ApiError::Conflict(e.to_string()),
        e => {
            tracing::warn!(error = %e, "Ops Manager unavailable");
            ApiError::Unavailable(e.to_string())
        }
    }
}

/// A backup store that cannot be read: an S3 bucket is a remote dependency (503); a local
/// folder that cannot be read is this server's fault (500).
fn store_unavailable(e: OpsManagerError) -> ApiError {
    match e {
        OpsManagerError::S3 { .. } => {
            tracing::warn!(error = %e, "backup store unavailable");
            ApiError::Unavailable(e.to_string())
        }
        e => ApiError::Internal(e.to_string()),
    }
}

/// The stored backups and the last successful run of each group.
#[utoipa::path(
    get,
    path = "/backups/opsmanager",
    tag = "backups",
    security(("bearer" = [])),
    params(("group" = Option<String>, Query, description = "Only this group", pattern = "^[A-Za-z0-9]{1,64}$")),
    responses(
        (status = 200, description = "Backups, newest version first, and the last success per group", body = BackupList),
        (status = 400, description = "Bad query parameter, or no groups to back up", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the scope", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or S3 backup store unavailable", body = crate::routes::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BackupList>, ApiError> {
    let query = parse_query(raw.as_deref(), false)?;
    let group = query
        .groups
        .first()
        .map(|g| GroupId::parse(g))
        .transpose()
        .map_err(upstream)?;
    let items = state
        .backup_store()
        .await
        .list(group.as_ref())
        .await
        .map_err(store_unavailable)?;
    let mut last_success = runs::last_success_per_group(&state.db).await?;
    if let Some(group) = query.groups.first() {
        last_success.retain(|l| &l.group_id == group);
    }
    Ok(Json(BackupList {
        items,
        last_success,
    }))
}

/// Backs up now: the named groups, every group, or `opsmanager.group_ids`.
#[utoipa::path(
    post,
    path = "/backups/opsmanager",
    tag = "backups",
    security(("bearer" = [])),
    params(
        ("group" = Option<Vec<String>>, Query, description = "A group to back up; repeatable", style = Form, explode),
        ("all_groups" = Option<bool>, Query, description = "Back up every group Ops Manager lists")
    ),
    responses(
        (status = 200, description = "What happened to each group", body = BackupRunResult),
        (status = 400, description = "Bad query parameter, or no groups to back up", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the scope", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ops Manager is not configured", body = crate::routes::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or Ops Manager unavailable", body = crate::routes::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
async fn back_up_now(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BackupRunResult>, ApiError> {
    let query = parse_query(raw.as_deref(), true)?;
    let settings = &state.settings.opsmanager;
    let client = OpsManagerClient::from_settings(settings).map_err(upstream)?;
    let groups = resolve_groups(
        &client,
        &query.groups,
        query.all_groups,
        &settings.group_ids,
    )
    .await
    .map_err(|e| match e {
        OpsManagerError::NotConfigured(what) => ApiError::BadRequest {
            detail: format!(
                "no groups to back up: name them with group= or all_groups=true, or set {what}"
            ),
            errors: Vec::new(),
        },
        e => upstream(e),
    })?;
    let results = back_up_groups(
        &client,
        state.backup_store().await,
        &groups,
        settings.concurrency,
        Arc::new(NoProgress),
    )
    .await;
    runs::record_all(&state.db, &results).await?;
    let failed = results
        .iter()
        .filter(|r| r.outcome == BackupOutcome::Failed)
        .count();
    let completeness = if failed == 0 {
        Completeness::Complete
    } else if failed < results.len() {
        Completeness::Partial
    } else {
        Completeness::Failed
    };
    Ok(Json(BackupRunResult {
        completeness,
        results,
    }))
}
