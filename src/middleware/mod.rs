//! The HTTP service around the router: request ids, a tracing span per request (a server
//! span of the caller's trace when traces are exported), the
//! concurrency and header limits, authentication, the request timeout, panic recovery, and
//! one access-log line and the HTTP metrics per request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use crossbeam_utils::CachePadded;
use futures::FutureExt;
use tower::Service;
use tracing::Instrument;

pub mod auth;
pub mod deadline;
pub mod error;
mod state;

pub use error::ApiError;
pub use state::{AppState, HttpContext};

use crate::config::telemetry;
use crate::metrics::METRICS;

/// Header carrying the request id, taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route (bounded, unlike raw paths).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route templates of the API, for the metrics' `route` label (bounded, unlike raw
/// paths).
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates(Arc<matchit::Router<&'static str>>);

impl RouteTemplates {
    /// A table of these templates (`/services/{key}` and the like).
    pub fn new(templates: impl IntoIterator<Item = &'static str>) -> Self {
        let mut router = matchit::Router::new();
        for template in templates {
            // A template given twice is the same route; the first insert stands.
            let _ = router.insert(template, template);
        }
        Self(Arc::new(router))
    }

    /// The template `path` matches, or [`UNMATCHED_ROUTE`].
    pub fn of(&self, path: &str) -> &'static str {
        self.0
            .at(path)
            .map_or(UNMATCHED_ROUTE, |matched| *matched.value)
    }
}

/// One request counted in [`HttpContext::requests_in_service`] until
/// dropped (probes are not counted); it holds the request's reference to its connection.
/// Lock-free, unlike a semaphore whose release takes its waiter-list mutex: nothing ever
/// waits here.
struct Admitted {
    connection: Connection,
    counted: bool,
}

impl Admitted {
    /// Counts the request in, unless the service is at its concurrency limit. Probes are let
    /// through uncounted: a flood of API requests must not make a healthy replica fail its
    /// liveness probe and be restarted.
    fn try_new(connection: &Connection, probe: bool) -> Option<Self> {
        if probe {
            return Some(Self {
                connection: connection.clone(),
                counted: false,
            });
        }
        let state = &connection.0.state;
        let max = state.settings.server.max_concurrent_requests;
        let before = state.requests_in_service.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            state.requests_in_service.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self {
            connection: connection.clone(),
            counted: true,
        })
    }

    fn state(&self) -> &AppState {
        &self.connection.0.state
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.counted {
            self.state()
                .requests_in_service
                .fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Routes exempt from the concurrency limit: the liveness and readiness probes.
fn is_probe(route: &str) -> bool {
    route == "/status/live" || route == "/status/ready"
}

/// The whole HTTP application: the router inside the per-request work.
///
/// One service wraps the router once, rather than a layer wrapping every route: a request is
/// checked and routed synchronously in [`Service::call`], and pays for one boxed future, not
/// for a cloned boxed route, a boxed `Next` and a boxed layer future on top of the router's
/// own. Serve it with [`crate::server::serve`] (or `axum::serve`, like a `Router`): each
/// connection gets a [`Connection`].
#[derive(Clone, Debug)]
pub struct HttpService {
    state: AppState,
    router: Router,
    templates: RouteTemplates,
}

impl HttpService {
    /// The service for one new connection.
    pub fn connection(&self) -> Connection {
        Connection(Arc::new(CachePadded::new(self.clone())))
    }

    /// Wraps `routes` (every route and the fallbacks) with the application's state; requests
    /// are labelled in the metrics by the first of `templates` their path matches.
    pub fn new(routes: Router<AppState>, templates: RouteTemplates, state: AppState) -> Self {
        Self {
            router: routes.with_state(state.clone()),
            state,
            templates,
        }
    }
}

/// What `call` decided before anything had to wait.
#[expect(
    clippy::large_enum_variant,
    reason = "one per request, inside its one boxed future; boxing the route future would \
              add an allocation per request"
)]
enum Start {
    /// Answered already: a limit or authentication refused the request.
    Answered(Response),
    /// Routed, and maybe waiting for its token to be looked up.
    Routed(Admitted, Option<auth::Lookup>, RouteFuture<Infallible>),
}

/// One connection's share of the [`HttpService`].
///
/// hyper clones a connection's service for every request, and a request keeps a reference to
/// it until it ends. Cloning this writes one reference count that only the connection's own
/// task touches, on a cache line of its own; cloning the state and the router would write
/// counts that every core writes, moving their cache lines between the cores per request.
#[derive(Clone, Debug)]
pub struct Connection(Arc<CachePadded<HttpService>>);

impl Service<Request> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Takes or makes the request id and opens the request span; refuses the request when the
    /// service is at its concurrency limit (503), its headers are too large (431) or its
    /// token does not do; routes it and runs it within the request timeout; then records the
    /// metrics by route template, writes one access-log line and echoes the request id.
    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&mut request);
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or_default(),
            token = tracing::field::Empty,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            http.request.method = tracing::field::Empty,
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        let method = request.method().clone();
        let route = self.0.templates.of(request.uri().path());
        telemetry::incoming(&span, request.headers(), method_label(&method), route);
        let limits = &self.0.state.settings.server;
        let timeout = Duration::from_secs(limits.request_timeout_secs);
        let start = match Admitted::try_new(self, is_probe(route)) {
            None => Start::Answered(ApiError::Overloaded.into_response()),
            Some(_) if headers_size(&request) > limits.header_limit_bytes => {
                Start::Answered(ApiError::HeadersTooLarge.into_response())
            }
            Some(admitted) => {
                let verdict = span.in_scope(|| {
                    auth::check(
                        admitted.state(),
                        request.method(),
                        request.uri(),
                        request.headers(),
                    )
                });
                match verdict {
                    auth::Verdict::Refused(response) => Start::Answered(response),
                    auth::Verdict::Allowed => Start::Routed(admitted, None, self.route(request)),
                    auth::Verdict::Unknown(lookup) => {
                        Start::Routed(admitted, Some(lookup), self.route(request))
                    }
                }
            }
        };
        Box::pin(async move {
            let response = match start {
                Start::Answered(response) => response,
                Start::Routed(admitted, lookup, routed) => {
                    let state = admitted.state();
                    let handled = std::panic::AssertUnwindSafe(async {
                        if let Some(lookup) = lookup
                            && let Some(refused) = auth::look_up(state, lookup).await
                        {
                            return refused;
                        }
                        match routed.await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        }
                    })
                    .catch_unwind()
                    .instrument(span.clone());
                    match state.deadlines.run(started + timeout, handled).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(_panic)) => {
                            ApiError::Internal("handler panicked".into()).into_response()
                        }
                        Err(_) => ApiError::Unavailable(format!(
                            "the request took longer than {} s and was abandoned",
                            timeout.as_secs()
                        ))
                        .into_response(),
                    }
                }
            };
            Ok(finish(response, &method, route, started, &span, id))
        })
    }
}

impl Connection {
    /// Starts routing `request`. The router takes `&mut self` to be called, so the request
    /// clones it, as axum's own serving does (its clone of a router writes one count).
    fn route(&self, request: Request) -> RouteFuture<Infallible> {
        self.0.router.clone().call(request)
    }
}

impl<L: axum::serve::Listener> Service<axum::serve::IncomingStream<'_, L>> for HttpService {
    type Response = Connection;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Connection, Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::serve::IncomingStream<'_, L>) -> Self::Future {
        std::future::ready(Ok(self.connection()))
    }
}

/// The metrics' label for a method: the standard methods by name, any other as `other`, so
/// that clients cannot create series at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Records the metrics and the access-log line of a request and echoes its id.
fn finish(
    mut response: Response,
    method: &Method,
    route: &'static str,
    started: Instant,
    span: &tracing::Span,
    id: HeaderValue,
) -> Response {
    let elapsed = started.elapsed();
    let status = response.status();
    telemetry::outgoing_status(span, status.as_u16());
    METRICS.record_http_request(method_label(method), route, status.as_str(), elapsed);
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
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, id);
    // No response is to be read as anything but its declared type.
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_become_labels() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"INVENTED").expect("a valid method token");
        assert_eq!(method_label(&invented), "other");
    }
}
