//! `/backups/opsmanager`: list the stored Ops Manager automation-config backups, and back up
//! now.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actions::{RunResponses, parse_flag, start_run};
use crate::actions::opsmanager_backup::{BackupParams, OpsManagerBackup};
use crate::actions::params::from_query;
use crate::actions::{Action, Valid};
use crate::db::backups as runs;
use crate::middleware::{ApiError, AppState};
use crate::plugins::opsmanager::{BackupEntry, GroupId, OpsManagerError};

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

/// The `group` of `GET /backups/opsmanager`, the only parameter it takes.
fn parse_group(raw: Option<&str>) -> Result<Option<GroupId>, ApiError> {
    let mut group = None;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key != "group" {
            return Err(ApiError::bad_parameter(
                &key,
                "unknown parameter; expected group",
            ));
        }
        group = Some(
            GroupId::parse(&value).map_err(|e| ApiError::bad_parameter("group", e.to_string()))?,
        );
    }
    Ok(group)
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
    operation_id = "list_backups",
    path = "/backups/opsmanager",
    tag = "backups",
    security(("bearer" = [])),
    params(("group" = Option<String>, Query, description = "Only this group", pattern = "^[A-Za-z0-9]{1,64}$")),
    responses(
        (status = 200, description = "Backups, newest version first, and the last success per group", body = BackupList),
        (status = 400, description = "Bad query parameter, or no groups to back up", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::AuthProblems,
        (status = 503, description = "Database or S3 backup store unavailable", body = crate::middleware::error::Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BackupList>, ApiError> {
    let group = parse_group(raw.as_deref())?;
    let items = state
        .backup_store()
        .await
        .list(group.as_ref())
        .await
        .map_err(store_unavailable)?;
    let mut last_success = runs::last_success_per_group(&state.db).await?;
    if let Some(group) = &group {
        last_success.retain(|l| l.group_id == group.as_str());
    }
    Ok(Json(BackupList {
        items,
        last_success,
    }))
}

/// Backs up now: the named groups, every group, or `opsmanager.group_ids`. The same as
/// `POST /actions/opsmanager.backup/runs` with these params.
#[utoipa::path(
    post,
    path = "/backups/opsmanager",
    tag = "backups",
    security(("bearer" = [])),
    params(
        ("group" = Option<Vec<String>>, Query, description = "A group to back up; repeatable", style = Form, explode),
        ("all_groups" = Option<bool>, Query, description = "Back up every group Ops Manager lists"),
        ("dry_run" = Option<bool>, Query, description = "List the groups that would be backed up; write nothing")
    ),
    responses(RunResponses)
)]
#[tracing::instrument(skip_all)]
async fn back_up_now(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut dry_run = false;
    let mut rest = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "dry_run" {
            dry_run = parse_flag("dry_run", &value)?;
        } else {
            rest.push((key.into_owned(), value.into_owned()));
        }
    }
    let params = from_query::<BackupParams>(&rest)
        .and_then(|params| Valid::<BackupParams>::from_json(params.clone()).map(|_| params))
        .map_err(|errors| ApiError::BadRequest {
            detail: format!("invalid query: {errors}"),
            errors: errors.0,
        })?;
    start_run(&state, &headers, OpsManagerBackup::NAME, params, dry_run).await
}
