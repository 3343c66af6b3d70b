//! `/runs`: the recorded action runs, newest first, and one run by id.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::runs as repo;
use crate::domain::run::{Run, RunFilter, RunOutcome, Trigger};
use crate::middleware::{ApiError, AppState};

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// A page of runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    /// Runs, newest first.
    pub items: Vec<Run>,
    /// Relative URL of the next page, or null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Default)]
struct ListQuery {
    filter: RunFilter,
    limit: Option<u32>,
    cursor: Option<Uuid>,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "action" => {
                    if crate::actions::find(&value).is_none() {
                        return Err(ApiError::bad_parameter("action", "no such action"));
                    }
                    q.filter.action = Some(value.into_owned());
                }
                "outcome" => {
                    q.filter.outcome = Some(RunOutcome::parse(&value).ok_or_else(|| {
                        ApiError::bad_parameter(
                            "outcome",
                            "expected running, ok, partial, failed or abandoned",
                        )
                    })?);
                }
                "trigger" => {
                    q.filter.trigger = Some(Trigger::parse(&value).ok_or_else(|| {
                        ApiError::bad_parameter("trigger", "expected cli, http or rule")
                    })?);
                }
                "limit" => q.limit = Some(super::parse_limit(&value)?),
                "cursor" => {
                    let id = URL_SAFE_NO_PAD
                        .decode(value.as_bytes())
                        .ok()
                        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                        .ok_or_else(|| {
                            ApiError::bad_parameter("cursor", "not a cursor returned by this API")
                        })?;
                    q.cursor = Some(id);
                }
                other => {
                    return Err(ApiError::bad_parameter(
                        other,
                        "unknown parameter; expected action, outcome, trigger, limit or cursor",
                    ));
                }
            }
        }
        Ok(q)
    }

    fn next_link(&self, before: Uuid, limit: u32) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(action) = &self.filter.action {
            query.append_pair("action", action);
        }
        if let Some(outcome) = self.filter.outcome {
            query.append_pair("outcome", outcome.as_str());
        }
        if let Some(trigger) = self.filter.trigger {
            query.append_pair("trigger", trigger.as_str());
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair("cursor", &URL_SAFE_NO_PAD.encode(before.as_bytes()));
        format!("/runs?{}", query.finish())
    }
}

/// Recorded action runs, newest first, a page at a time.
#[utoipa::path(
    get,
    operation_id = "list_runs",
    path = "/runs",
    tag = "actions",
    security(("bearer" = [])),
    params(
        ("action" = Option<String>, Query, description = "Only runs of this action"),
        ("outcome" = Option<String>, Query, description = "running, ok, partial, failed or abandoned"),
        ("trigger" = Option<String>, Query, description = "cli, http or rule"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque position from a previous page's `next`")
    ),
    responses(
        (status = 200, description = "A page of runs; `next` is also sent as a Link header", body = RunList),
        (status = 400, description = "Bad query parameter", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::AuthProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;
    let limit = query.limit.unwrap_or(super::DEFAULT_LIMIT);
    let page = repo::list(&state.db, &query.filter, limit, query.cursor).await?;
    let next = page.next_before.map(|id| query.next_link(id, limit));
    let link = next.clone();
    Ok(super::page(
        RunList {
            items: page.items,
            next,
        },
        link.as_deref(),
    ))
}

/// One run: its params, outcome, per-target results and output.
#[utoipa::path(
    get,
    operation_id = "show_run",
    path = "/runs/{id}",
    tag = "actions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run's id (UUID)")),
    responses(
        (status = 200, description = "The run", body = Run),
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such run", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all, fields(run = %id))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::NotFound(format!("run {id:?} not found")))?;
    Ok(Json(repo::get(&state.db, id).await?))
}
