//! `/rules`: rules with the conventions of `/services` (ETag and If-Match, JSON Merge Patch,
//! paging, lookup by id or name), running one now, and its runs.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::actions::parse_flag;
use super::extract::{JsonBody, OptionalJsonBody, check_if_match, with_etag};
use crate::actions::Registered;
use crate::db::rules as repo;
use crate::domain::rule::{Rule, RuleRun, RuleSpec};
use crate::domain::service::{ServiceKey, ServiceName};
use crate::middleware::{ApiError, AppState, auth};
use crate::scheduler;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
        .routes(routes!(runs, run_now))
        .routes(routes!(show_run))
}

crate::middleware::error::problem_set! {
    /// The problems every rule route may answer.
    RuleProblems {
        "400" => "Malformed JSON or query parameter",
        "401" => "Missing or invalid token",
        "403" => "The token lacks the scope",
        "404" => "No such rule",
        "409" => "Duplicate name or a concurrent write won",
        "412" => "If-Match does not match",
        "413" => "Body over the limit",
        "415" => "Content-Type is not JSON",
        "422" => "Invalid or unknown fields, each named (steps[1].params.tags)",
        "503" => "Database unavailable",
    }
}

/// The writable fields of a rule (the body of POST and PUT). Read-only fields sent back from a
/// fetched rule are ignored; any other field is rejected.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "documents the request body, which RuleSpec parses"
)]
pub struct RuleWrite {
    /// Unique lowercase slug.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    name: String,
    /// What it is for.
    #[schema(max_length = 4096)]
    description: Option<String>,
    /// The registered service it belongs to (name or id).
    service: Option<String>,
    /// Cron: 5 fields, 6 with seconds first, or `@hourly`, `@daily`…; none for a rule run
    /// on demand only.
    schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    timezone: Option<String>,
    /// Whether the schedule fires (default true).
    enabled: Option<bool>,
    /// `stop` (default) or `continue` when a step does not end ok.
    on_failure: Option<crate::domain::rule::OnFailure>,
    /// The steps, in order: `{"action": "aws.ec2.stop", "params": {…}}` (1 to 50).
    steps: Vec<crate::domain::rule::Step>,
}

/// A page of rules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleList {
    /// Rules in name order.
    pub items: Vec<Rule>,
    /// Relative URL of the next page, or null on the last page.
    pub next: Option<String>,
}

/// A page of a rule's runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleRunList {
    /// Runs, newest first.
    pub items: Vec<RuleRun>,
    /// Relative URL of the next page, or null on the last page.
    pub next: Option<String>,
}

fn parse_key(key: &str) -> Result<ServiceKey, ApiError> {
    ServiceKey::parse(key).map_err(|_| ApiError::NotFound(format!("rule {key:?} not found")))
}

/// `limit` and `cursor` of a listing; the cursor is decoded by `decode`.
fn paging<T>(
    raw: Option<&str>,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<(u32, Option<T>), ApiError> {
    let mut limit = super::DEFAULT_LIMIT;
    let mut cursor = None;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => limit = super::parse_limit(&value)?,
            "cursor" => {
                cursor = Some(
                    URL_SAFE_NO_PAD
                        .decode(value.as_bytes())
                        .ok()
                        .and_then(|bytes| decode(&bytes))
                        .ok_or_else(|| {
                            ApiError::bad_parameter("cursor", "not a cursor returned by this API")
                        })?,
                );
            }
            other => {
                return Err(ApiError::bad_parameter(
                    other,
                    "unknown parameter; expected limit or cursor",
                ));
            }
        }
    }
    Ok((limit, cursor))
}

fn rule_etag(rule: Rule, status: StatusCode) -> Response {
    let etag = rule.etag();
    with_etag(status, rule, &etag)
}

/// Lists rules in name order, a page at a time.
#[utoipa::path(
    get,
    operation_id = "list_rules",
    path = "/rules",
    tag = "rules",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque position from a previous page's `next`")
    ),
    responses((status = 200, description = "A page of rules; `next` is also a Link header", body = RuleList), RuleProblems)
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (limit, after) = paging(raw.as_deref(), |bytes| {
        String::from_utf8(bytes.to_vec())
            .ok()
            .filter(|name| ServiceName::parse(name).is_ok())
    })?;
    let page = repo::list(&state.db, limit, after.as_deref()).await?;
    let next = page.next_after.map(|after| {
        format!(
            "/rules?limit={limit}&cursor={}",
            URL_SAFE_NO_PAD.encode(after)
        )
    });
    Ok(super::page(
        RuleList {
            items: page.items,
            next: next.clone(),
        },
        next.as_deref(),
    ))
}

/// Creates a rule.
#[utoipa::path(
    post,
    operation_id = "create_rule",
    path = "/rules",
    tag = "rules",
    security(("bearer" = [])),
    request_body(content = RuleWrite, content_type = "application/json"),
    responses((status = 201, description = "Created; Location and ETag headers are set", body = Rule), RuleProblems)
)]
#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = RuleSpec::from_json(&body, &Registered)?;
    let rule = repo::create(&state.db, &spec).await?;
    tracing::info!(rule = %rule.name, id = %rule.id, "rule created");
    let location = format!("/rules/{}", rule.id);
    Ok(super::with_location(
        rule_etag(rule, StatusCode::CREATED),
        &location,
    ))
}

/// One rule by id or name.
#[utoipa::path(
    get,
    operation_id = "show_rule",
    path = "/rules/{key}",
    tag = "rules",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Rule id (UUID) or name")),
    responses((status = 200, description = "The rule, with its ETag", body = Rule), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let rule = repo::get(&state.db, &parse_key(&key)?).await?;
    Ok(rule_etag(rule, StatusCode::OK))
}

/// Replaces every writable field of a rule.
#[utoipa::path(
    put,
    operation_id = "replace_rule",
    path = "/rules/{key}",
    tag = "rules",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Rule id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the rule must have, or *")),
    request_body(content = RuleWrite, content_type = "application/json"),
    responses((status = 200, description = "The rule as stored, with its new ETag", body = Rule), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn replace(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = RuleSpec::from_json(&body, &Registered)?;
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_if_match(&headers, &current.etag(), &format!("rule {}", current.name))?;
    let rule = repo::update(&state.db, &current, &spec).await?;
    Ok(rule_etag(rule, StatusCode::OK))
}

/// Changes a rule with a JSON Merge Patch (RFC 7396); `steps` is replaced whole.
#[utoipa::path(
    patch,
    operation_id = "patch_rule",
    path = "/rules/{key}",
    tag = "rules",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Rule id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the rule must have, or *")),
    request_body(content = Object, content_type = "application/merge-patch+json", description = "Fields to change; null resets"),
    responses((status = 200, description = "The rule as stored, with its new ETag", body = Rule), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn patch(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    let spec = RuleSpec::merge_patch(&current, &body, &Registered)?;
    check_if_match(&headers, &current.etag(), &format!("rule {}", current.name))?;
    let rule = repo::update(&state.db, &current, &spec).await?;
    Ok(rule_etag(rule, StatusCode::OK))
}

/// Deletes a rule and its run history.
#[utoipa::path(
    delete,
    operation_id = "delete_rule",
    path = "/rules/{key}",
    tag = "rules",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Rule id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the rule must have, or *")),
    responses((status = 204, description = "Deleted"), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_if_match(&headers, &current.etag(), &format!("rule {}", current.name))?;
    if repo::delete(&state.db, current.id, Some(current.revision)).await? {
        tracing::info!(rule = %current.name, id = %current.id, "rule deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(format!(
            "rule {} was changed or deleted by another request; fetch it again and retry",
            current.name
        )))
    }
}

/// A rule's runs, newest first: each with its slot, trigger, outcome and steps.
#[utoipa::path(
    get,
    operation_id = "list_rule_runs",
    path = "/rules/{key}/runs",
    tag = "rules",
    security(("bearer" = [])),
    params(
        ("key" = String, Path, description = "Rule id (UUID) or name"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque position from a previous page's `next`")
    ),
    responses((status = 200, description = "A page of runs", body = RuleRunList), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn runs(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (limit, before) = paging(raw.as_deref(), |bytes| Uuid::from_slice(bytes).ok())?;
    let rule = repo::get(&state.db, &parse_key(&key)?).await?;
    let (items, next_before) = repo::runs_of(&state.db, rule.id, limit, before).await?;
    let next = next_before.map(|id| {
        format!(
            "/rules/{}/runs?limit={limit}&cursor={}",
            rule.name,
            URL_SAFE_NO_PAD.encode(id.as_bytes())
        )
    });
    Ok(super::page(
        RuleRunList {
            items,
            next: next.clone(),
        },
        next.as_deref(),
    ))
}

/// Runs a rule now (`dry_run=true`: every step lists and checks, changing nothing): 201 with
/// the run when it ends within `actions.inline_wait_ms`, else 202; `Location` names it.
#[utoipa::path(
    post,
    operation_id = "run_rule",
    path = "/rules/{key}/runs",
    tag = "rules",
    security(("bearer" = [])),
    params(
        ("key" = String, Path, description = "Rule id (UUID) or name"),
        ("dry_run" = Option<bool>, Query, description = "List and check; change nothing")
    ),
    responses(
        (status = 201, description = "The run ended; Location names it", body = RuleRun),
        (status = 202, description = "The run goes on; Location names it", body = RuleRun),
        RuleProblems
    )
)]
#[tracing::instrument(skip_all, fields(rule = %key))]
async fn run_now(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    if body.is_some_and(|b| b.as_object().is_none_or(|o| !o.is_empty())) {
        return Err(ApiError::BadRequest {
            detail: "a rule run takes no body; its params are the rule's".into(),
            errors: Vec::new(),
        });
    }
    let mut dry_run = false;
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if name == "dry_run" {
            dry_run = parse_flag("dry_run", &value)?;
        } else {
            return Err(ApiError::bad_parameter(
                &name,
                "unknown parameter; expected dry_run",
            ));
        }
    }
    let rule = repo::get(&state.db, &parse_key(&key)?).await?;
    let name = rule.name.clone();
    let actor = auth::caller(&state, &headers).await;
    let owner = scheduler::replica_name();
    let (id, done) = scheduler::start_now(&state.app, rule, &actor, dry_run, &owner).await?;
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    let wait = state.settings.actions.inline_wait(timeout);
    let (status, run) = match tokio::time::timeout(wait, done).await {
        Ok(Ok(run)) => (StatusCode::CREATED, run),
        _ => (StatusCode::ACCEPTED, repo::get_run(&state.db, id).await?),
    };
    Ok(super::with_location(
        (status, Json(run)).into_response(),
        &format!("/rules/{name}/runs/{id}"),
    ))
}

/// One run of a rule.
#[utoipa::path(
    get,
    operation_id = "show_rule_run",
    path = "/rules/{key}/runs/{id}",
    tag = "rules",
    security(("bearer" = [])),
    params(
        ("key" = String, Path, description = "Rule id (UUID) or name"),
        ("id" = String, Path, description = "The run's id (UUID)")
    ),
    responses((status = 200, description = "The run", body = RuleRun), RuleProblems)
)]
#[tracing::instrument(skip_all, fields(rule = %key, run = %id))]
async fn show_run(
    State(state): State<AppState>,
    Path((key, id)): Path<(String, String)>,
) -> Result<Json<RuleRun>, ApiError> {
    let rule = repo::get(&state.db, &parse_key(&key)?).await?;
    let not_found = || ApiError::NotFound(format!("run {id:?} of rule {} not found", rule.name));
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let run = repo::get_run(&state.db, id).await?;
    if run.rule_id != rule.id {
        return Err(not_found());
    }
    Ok(Json(run))
}
