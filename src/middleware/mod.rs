//! Middleware applied to every request: request ids, a tracing span per request, one access
//! log line and the HTTP metrics per request, a request timeout and panic recovery.

use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub mod auth;

use crate::app::AppState;
use crate::metrics::METRICS;
use crate::routes::error::ApiError;

/// Header carrying the request id, taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route (bounded, unlike raw paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The matched route template of a request, passed from the router to the access log.
#[derive(Debug, Clone)]
struct RouteTemplate(MatchedPath);

/// Wraps `routes` in the middleware stack.
///
/// Per-route layers (route template, authentication, timeout) wrap each route; the rest wraps
/// the whole router once, so the concurrency limit is one limit for the whole service.
pub fn apply(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);
    let header_limit = state.settings.server.header_limit_bytes;
    let max_concurrent = state.settings.server.max_concurrent_requests;
    let routes = routes
        .route_layer(from_fn(remember_route))
        .layer(from_fn_with_state(state.clone(), auth::require_token))
        .layer(from_fn_with_state(timeout, request_timeout))
        .with_state(state);
    Router::new().fallback_service(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(())
                    .on_failure(()),
            )
            .layer(from_fn(observe_request))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::Overloaded.into_response()
            }))
            .load_shed()
            .concurrency_limit(max_concurrent)
            .layer(from_fn_with_state(header_limit, limit_headers))
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::Internal("handler panicked".into()).into_response()
            }))
            .service(routes),
    )
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", request_id = %request_id, token = tracing::field::Empty)
}

async fn remember_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

struct InFlight;

impl InFlight {
    fn enter() -> Self {
        METRICS.http_in_flight.inc();
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.http_in_flight.dec();
    }
}

async fn observe_request(request: Request, next: Next) -> Response {
    let _in_flight = InFlight::enter();
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or(UNMATCHED_ROUTE, |r| r.0.as_str());
    let status = response.status();
    METRICS.record_http_request(method.as_str(), route, status.as_str(), elapsed);
    tracing::info!(
        target: "pincher::access",
        method = %method,
        route,
        status = status.as_u16(),
        latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
    response
}

async fn limit_headers(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > limit {
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}

async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "the request took longer than {} s and was abandoned",
            limit.as_secs()
        ))
        .into_response(),
    }
}
