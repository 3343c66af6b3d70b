//! `/actions`: every action with its params schema, and `POST /actions/{name}/runs` to run
//! one — answered 201 with the run when it ends within `actions.inline_wait_ms`, else 202
//! with its address while it goes on.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::{self, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::OptionalJsonBody;
use crate::actions::runner::StartError;
use crate::actions::{ActionInfo, RunOptions, describe, find};
use crate::db::runs as repo;
use crate::domain::run::{Run, Trigger};
use crate::middleware::{ApiError, AppState, auth};

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(run_action))
}

/// The responses of every route that starts a run.
pub struct RunResponses;

impl utoipa::IntoResponses for RunResponses {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let run = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Run")))
                        .build(),
                )
                .build()
                .into()
        };
        let problem = crate::middleware::error::problem_response;
        BTreeMap::from([
            (
                "201".to_owned(),
                run("The run ended within actions.inline_wait_ms; Location is /runs/{id}"),
            ),
            (
                "202".to_owned(),
                run("The run goes on; Location is /runs/{id}, where it ends"),
            ),
            ("400".to_owned(), problem("Bad query parameter or body")),
            ("401".to_owned(), problem("Missing or invalid token")),
            ("403".to_owned(), problem("The token lacks the write scope")),
            ("404".to_owned(), problem("No such action")),
            ("413".to_owned(), problem("Body over the limit")),
            ("415".to_owned(), problem("Content-Type is not JSON")),
            (
                "422".to_owned(),
                problem("Params the action refuses, each field named"),
            ),
            ("503".to_owned(), problem("The run could not be recorded")),
        ])
    }
}

/// A query flag: `true` or `false`.
pub fn parse_flag(name: &str, value: &str) -> Result<bool, ApiError> {
    crate::actions::params::flag(value)
        .ok_or_else(|| ApiError::bad_parameter(name, "expected true or false"))
}

/// Starts a run of the action `name` for a request, waits up to `actions.inline_wait_ms` for
/// it, and answers 201 with the finished run or 202 with the run as recorded so far; both with
/// `Location: /runs/{id}`.
pub async fn start_run(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    params: Value,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let action = find(name).ok_or_else(|| ApiError::NotFound(format!("no action {name:?}")))?;
    let options = RunOptions {
        trigger: Trigger::Http,
        actor: auth::caller(state, headers).await,
        dry_run,
        record: true,
    };
    let spawned = action
        .spawn(&state.app, params, options)
        .await
        .map_err(|e| match e {
            StartError::Invalid(errors) => ApiError::Validation(errors),
            StartError::Record(e) => ApiError::from(e),
        })?;
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    let wait = state.settings.actions.inline_wait(timeout);
    let (status, run) = match tokio::time::timeout(wait, spawned.done).await {
        Ok(Ok(run)) => (StatusCode::CREATED, run),
        _ => (
            StatusCode::ACCEPTED,
            repo::get(&state.db, spawned.id).await?,
        ),
    };
    Ok(run_response(status, run))
}

fn run_response(status: StatusCode, run: Run) -> Response {
    let location = format!("/runs/{}", run.id);
    super::with_location((status, Json(run)).into_response(), &location)
}

/// Every action: name, summary, whether it changes anything, and its params schema.
#[utoipa::path(
    get,
    operation_id = "list_actions",
    path = "/actions",
    tag = "actions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every action", body = Vec<ActionInfo>),
        crate::middleware::error::AuthProblems
    )
)]
async fn list() -> Json<Vec<ActionInfo>> {
    Json(describe())
}

/// Runs an action with the params in the body (an empty body is `{}`); `dry_run=true` lists
/// and checks, changing nothing. The run is recorded whatever the action.
#[utoipa::path(
    post,
    path = "/actions/{name}/runs",
    tag = "actions",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The action's dotted name, e.g. aws.ec2.stop"),
        ("dry_run" = Option<bool>, Query, description = "List and check; change nothing")
    ),
    request_body(content = Option<Object>, content_type = "application/json", description = "The action's params (none: `{}`); see GET /actions for each action's schema"),
    responses(RunResponses)
)]
#[tracing::instrument(skip_all, fields(action = %name))]
async fn run_action(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    let mut dry_run = false;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "dry_run" {
            dry_run = parse_flag("dry_run", &value)?;
        } else {
            return Err(ApiError::bad_parameter(
                &key,
                "unknown parameter; expected dry_run (params go in the body)",
            ));
        }
    }
    let params = body.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    start_run(&state, &headers, &name, params, dry_run).await
}
