//! Middleware applied to every request: request ids, a tracing span per request, one access
//! log line and the HTTP metrics per request, a request timeout and panic recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

pub mod auth;

use crate::app::AppState;
use crate::metrics::METRICS;
use crate::routes::error::ApiError;

/// Header carrying the request id, taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route (bounded, unlike raw paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What the per-request layer needs: the state (for authentication) and the limits.
#[derive(Debug, Clone)]
struct Limits {
    state: AppState,
    timeout: Duration,
    header_bytes: usize,
    /// One permit per request being served; none left means 503 at once (load shedding).
    permits: Arc<Semaphore>,
}

/// Wraps `routes` in the middleware stack.
///
/// One hand-written layer ([`serve_request`]) does all the per-request work, so a request pays
/// for one boxed future rather than one per concern; inside it, panics become 500s. It wraps
/// every route and the fallback; the permits are shared, so the concurrency limit is one limit
/// for the whole service.
pub fn apply(routes: Router<AppState>, state: AppState) -> Router {
    let limits = Limits {
        timeout: Duration::from_secs(state.settings.server.request_timeout_secs),
        header_bytes: state.settings.server.header_limit_bytes,
        permits: Arc::new(Semaphore::new(
            state.settings.server.max_concurrent_requests,
        )),
        state: state.clone(),
    };
    routes
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(from_fn_with_state(limits, serve_request))
        .with_state(state)
}

/// The request id the client sent, or a new UUID (which is then set on the request).
fn request_id(request: &mut Request) -> HeaderValue {
    if let Some(id) = request.headers().get(&REQUEST_ID) {
        return id.clone();
    }
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    let id = HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"));
    request.headers_mut().insert(REQUEST_ID, id.clone());
    id
}

fn headers_size(request: &Request) -> usize {
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
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

/// The per-request layer: takes or makes the request id and opens the request span; refuses
/// the request when the service is at its concurrency limit (503) or its headers are too large
/// (431); authenticates it and runs it within the request timeout; then records the metrics by
/// route template, writes one access-log line and echoes the request id.
async fn serve_request(State(limits): State<Limits>, mut request: Request, next: Next) -> Response {
    let _in_flight = InFlight::enter();
    let started = Instant::now();
    let id = request_id(&mut request);
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        token = tracing::field::Empty
    );
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let permit = limits.permits.try_acquire();
    let mut response = if permit.is_err() {
        ApiError::Overloaded.into_response()
    } else if headers_size(&request) > limits.header_bytes {
        ApiError::HeadersTooLarge.into_response()
    } else {
        let handled = auth::require_token(&limits.state, request, next).instrument(span.clone());
        match tokio::time::timeout(limits.timeout, handled).await {
            Ok(response) => response,
            Err(_) => ApiError::Unavailable(format!(
                "the request took longer than {} s and was abandoned",
                limits.timeout.as_secs()
            ))
            .into_response(),
        }
    };
    drop(permit);
    let elapsed = started.elapsed();
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let status = response.status();
    METRICS.record_http_request(method.as_str(), route, status.as_str(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            target: "pincher::access",
            method = %method,
            route,
            status = status.as_u16(),
            latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "request"
        );
    });
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
