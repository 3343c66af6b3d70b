//! Middleware applied to every request: request ids, a tracing span per request, one access
//! log line and the HTTP metrics per request, a request timeout and panic recovery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

pub mod auth;
pub mod deadline;

use crate::app::AppState;
use crate::metrics::METRICS;
use crate::routes::error::ApiError;

/// Header carrying the request id, taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route (bounded, unlike raw paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// One request counted in [`Context::requests_in_service`](crate::app::Context) until
/// dropped. Lock-free, unlike a semaphore whose release takes its waiter-list mutex: nothing
/// ever waits here.
struct Admitted<'a>(&'a AtomicUsize);

impl<'a> Admitted<'a> {
    fn try_new(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wraps `routes` in the middleware stack.
///
/// One hand-written layer ([`serve_request`]) does all the per-request work, panic recovery
/// included, so a request pays for one boxed future rather than one per concern. It wraps
/// every route and the fallback; the request count is shared, so the concurrency limit is one
/// limit for the whole service.
pub fn apply(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(from_fn_with_state(state.clone(), serve_request))
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

/// The per-request layer: takes or makes the request id and opens the request span; refuses
/// the request when the service is at its concurrency limit (503) or its headers are too large
/// (431); authenticates it and runs it within the request timeout; then records the metrics by
/// route template, writes one access-log line and echoes the request id.
async fn serve_request(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = &state.settings.server;
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    let started = Instant::now();
    let id = request_id(&mut request);
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        token = tracing::field::Empty
    );
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let admitted = Admitted::try_new(&state.requests_in_service, limits.max_concurrent_requests);
    let mut response = if admitted.is_none() {
        ApiError::Overloaded.into_response()
    } else if headers_size(&request) > limits.header_limit_bytes {
        ApiError::HeadersTooLarge.into_response()
    } else {
        let handled = std::panic::AssertUnwindSafe(auth::require_token(&state, request, next))
            .catch_unwind()
            .instrument(span.clone());
        match state.deadlines.run(started + timeout, handled).await {
            Ok(Ok(response)) => response,
            Ok(Err(_panic)) => ApiError::Internal("handler panicked".into()).into_response(),
            Err(_) => ApiError::Unavailable(format!(
                "the request took longer than {} s and was abandoned",
                timeout.as_secs()
            ))
            .into_response(),
        }
    };
    drop(admitted);
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
