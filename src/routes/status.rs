//! `/status`, `/status/live` and `/status/ready`: health probes for load balancers and
//! Kubernetes, in the health-check response format.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::health::{HEALTH_JSON, Health, HealthStatus};
use crate::middleware::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(live))
        .routes(routes!(ready))
}

fn health_response(code: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (code, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(HEALTH_JSON),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Every dependency: 200 for pass or warn, 503 for fail.
#[utoipa::path(
    get,
    path = "/status",
    tag = "meta",
    responses(
        (status = 200, description = "pass or warn", body = Object, content_type = "application/health+json"),
        (status = 503, description = "fail: a required dependency is down", body = Object, content_type = "application/health+json")
    )
)]
async fn status(State(state): State<AppState>) -> Response {
    let health: Health = state.health.get(&state.app).await;
    let code = if health.status == HealthStatus::Fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    health_response(code, serde_json::to_value(&health).unwrap_or_default())
}

/// The process is up. Touches no dependency.
#[utoipa::path(
    get,
    path = "/status/live",
    tag = "meta",
    responses((status = 200, description = "The process serves HTTP", body = Object, content_type = "application/health+json"))
)]
async fn live() -> Response {
    health_response(
        StatusCode::OK,
        json!({"status": "pass", "version": env!("CARGO_PKG_VERSION")}),
    )
}

/// The database is reachable and fully migrated.
#[utoipa::path(
    get,
    path = "/status/ready",
    tag = "meta",
    responses(
        (status = 200, description = "Ready to serve", body = Object, content_type = "application/health+json"),
        (status = 503, description = "Database unreachable or migrations pending", body = Object, content_type = "application/health+json")
    )
)]
async fn ready(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_millis(state.settings.status.check_timeout_ms);
    let outcome = tokio::time::timeout(timeout, state.db.is_migrated()).await;
    let (code, status, output) = match outcome {
        Ok(Ok(true)) => (StatusCode::OK, "pass", None),
        Ok(Ok(false)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "fail",
            Some("database migrations are pending".to_owned()),
        ),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, "fail", Some(e.to_string())),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "fail",
            Some(format!(
                "the database did not answer within {} ms",
                timeout.as_millis()
            )),
        ),
    };
    let mut body = json!({"status": status, "version": env!("CARGO_PKG_VERSION")});
    if let Some(output) = output {
        body["output"] = json!(output);
    }
    health_response(code, body)
}
