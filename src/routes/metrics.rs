//! `/metrics`: the Prometheus text exposition, optionally behind a bearer token.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::METRICS;
use crate::middleware::AppState;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Marks the listener of `metrics.listen`.
#[derive(Debug, Clone, Copy)]
struct OwnListener;

/// A router serving only `/metrics`, for a separate listen address.
pub fn standalone(state: AppState) -> Router {
    let routes: Router<AppState> = router().split_for_parts().0;
    routes.layer(Extension(OwnListener)).with_state(state)
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses(
        (status = 200, description = "Every metric", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "metrics.token is set and the request did not send it", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "metrics.listen moved /metrics to its own address", body = crate::middleware::error::Problem, content_type = "application/problem+json")
    )
)]
async fn metrics(
    State(state): State<AppState>,
    own_listener: Option<Extension<OwnListener>>,
    headers: HeaderMap,
) -> Response {
    if state.settings.metrics.listen.is_some() && own_listener.is_none() {
        return crate::middleware::error::ApiError::NotFound(
            "/metrics is served on its own address (metrics.listen)".into(),
        )
        .into_response();
    }
    if let Some(token) = &state.settings.metrics.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
            let mut response = crate::middleware::error::ApiError::Unauthorized(
                "a valid bearer token is required to read /metrics".into(),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pincher-metrics\""),
            );
            return response;
        }
    }
    let in_service = state.requests_in_service.load(Ordering::Relaxed);
    METRICS
        .http_in_flight
        .set(i64::try_from(in_service).unwrap_or(i64::MAX));
    METRICS.refresh(&state.db, state.backup_store().await).await;
    let mut response = (StatusCode::OK, METRICS.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
