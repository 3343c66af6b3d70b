//! Traces for an OpenTelemetry collector: the OTLP/HTTP exporter behind `telemetry.*`, the
//! W3C `traceparent` taken from incoming requests and sent on outgoing calls, and the spans
//! of remote calls. With no endpoint set none of this runs: no layer, no header parsed, no
//! span made.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TelemetrySettings;

/// Whether spans are exported; set once, by [`exporter`].
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Path of the traces endpoint under an OTLP/HTTP base URL.
const TRACES_PATH: &str = "/v1/traces";

/// Whether traces are exported (`telemetry.otlp_endpoint` is set and the exporter started).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the trace exporter (telemetry.otlp_endpoint): {0}")]
pub struct TelemetryError(String);

/// The running exporter. Dropping it sends the spans still queued (waiting at most
/// `telemetry.export_timeout_secs`); drop it outside any async runtime.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("pincher: traces still queued at exit were not all sent: {e}");
        }
    }
}

/// The layer that turns spans into OpenTelemetry spans, and the guard of their exporter.
pub type Exporter<S> = (
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    TelemetryGuard,
);

/// The URL spans are posted to: `endpoint` itself when it has a path, else its
/// `/v1/traces`, as OpenTelemetry's `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
pub fn traces_url(endpoint: &url::Url) -> String {
    let base = endpoint.as_str().trim_end_matches('/');
    if endpoint.path().trim_matches('/').is_empty() {
        format!("{base}{TRACES_PATH}")
    } else {
        base.to_owned()
    }
}

/// The tracing layer that exports spans, and the guard that flushes them, when
/// `telemetry.otlp_endpoint` is set; `None` otherwise. Spans are batched on a thread of their own, so a slow collector never holds
/// up a request; when the queue is full, spans are dropped, not requests.
pub fn exporter<S>(settings: &TelemetrySettings) -> Result<Option<Exporter<S>>, TelemetryError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(settings.export_timeout_secs))
        .build()
        .map_err(|e| TelemetryError(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("pincher");
    ENABLED.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false);
    Ok(Some((layer, TelemetryGuard { provider })))
}

/// Makes `span` (a request's server span) a child of the caller's span named by the
/// request's `traceparent`, and names it for traces (`GET /services/{key}`).
pub fn incoming(span: &tracing::Span, headers: &http::HeaderMap, method: &str, route: &str) {
    if !enabled() {
        return;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    // A span already closed cannot take a parent; this one has just been made.
    let _ = span.set_parent(parent);
    span.record("otel.name", format!("{method} {route}"));
    span.record("otel.kind", "server");
    span.record("http.request.method", method);
    span.record("http.route", route);
}

/// Names `span` for traces (`otel.name`), when traces are exported.
pub fn name(span: &tracing::Span, name: &str) {
    if enabled() {
        span.record("otel.name", name);
    }
}

/// Where in a trace the current span is, carried to work that outlives it (a run in a task
/// of its own), so that the work's span joins the trace without keeping the caller's span
/// open until the work ends.
#[derive(Debug, Clone, Default)]
pub struct Parent(Option<opentelemetry::Context>);

/// The current span's place in its trace; nothing when traces are off.
pub fn current_parent() -> Parent {
    if !enabled() {
        return Parent(None);
    }
    Parent(Some(tracing::Span::current().context()))
}

/// Makes `span` (made with `parent: None`) a child of `parent` in the trace.
pub fn adopt(span: &tracing::Span, parent: Parent) {
    if let Some(cx) = parent.0 {
        let _ = span.set_parent(cx);
    }
}

/// Records the response status on a request's server span (5xx marks it an error).
pub fn outgoing_status(span: &tracing::Span, status: u16) {
    if !enabled() {
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// The span of one remote call (`system` `aws`, `opsmanager` or `chef`; `operation` from a
/// fixed set), or a disabled span when traces are off.
pub fn client_span(system: &'static str, operation: &'static str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "plugin call",
        otel.name = operation,
        otel.kind = "client",
        rpc.system = system,
        rpc.method = operation,
        otel.status_code = tracing::field::Empty,
    )
}

/// Marks a remote call's span as failed.
pub fn client_failed(span: &tracing::Span) {
    if enabled() {
        span.record("otel.status_code", "error");
    }
}

tokio::task_local! {
    /// The trace headers of the remote call in progress on this task.
    static CALL_HEADERS: Vec<(&'static str, String)>;
}

/// The W3C trace-context headers (`traceparent`, `tracestate`) that name `span` as the
/// caller; none when traces are off or the span is not exported.
pub fn headers_for(span: &tracing::Span) -> Vec<(&'static str, String)> {
    if !enabled() {
        return Vec::new();
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    let mut headers = Vec::with_capacity(carrier.len());
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = carrier.remove(name).filter(|v| !v.is_empty()) {
            headers.push((name, value));
        }
    }
    headers
}

/// `call` inside `span`, with `span`'s trace headers available to [`call_headers`] for every
/// HTTP request the call sends (retries included); `call` itself when traces are off. No
/// larger than `call` and a span: remote calls nest deep inside reports, and a wrapper that
/// held the call twice would double their futures.
pub fn within_call<F: Future>(span: tracing::Span, call: F) -> impl Future<Output = F::Output> {
    use futures::future::Either;
    use tracing::Instrument;
    if !enabled() {
        return Either::Left(call);
    }
    let headers = headers_for(&span);
    Either::Right(CALL_HEADERS.scope(headers, call.instrument(span)))
}

/// The trace headers to send on an outgoing request of the remote call in progress; none
/// outside one, or when traces are off.
pub fn call_headers() -> Vec<(&'static str, String)> {
    if !enabled() {
        return Vec::new();
    }
    CALL_HEADERS.try_with(Clone::clone).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint_only() {
        let url = |s: &str| url::Url::parse(s).expect("a URL");
        assert_eq!(
            traces_url(&url("http://collector:4318")),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url(&url("http://collector:4318/")),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url(&url("https://otlp.example.com/tenant/v1/traces")),
            "https://otlp.example.com/tenant/v1/traces"
        );
    }

    /// The shipped collector config receives OTLP/HTTP where `otlp_endpoint`'s example
    /// points, and its traces pipeline names only components it defines. (The collector
    /// itself cannot be installed here to run `otelcol validate`.)
    #[test]
    fn the_collector_config_receives_otlp_http_and_its_pipeline_is_whole() {
        let text = include_str!("../../infrastructure/images/collector-config.yaml");
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("YAML");
        assert_eq!(
            config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].as_str(),
            Some("0.0.0.0:4318")
        );
        let pipeline = &config["service"]["pipelines"]["traces"];
        for kind in ["receivers", "processors", "exporters"] {
            let named = pipeline[kind].as_sequence().expect("a list");
            assert!(!named.is_empty(), "{kind}");
            for name in named {
                let name = name.as_str().expect("a name");
                assert!(
                    config[kind].get(name).is_some(),
                    "the pipeline names {kind} {name}, which is not defined"
                );
            }
        }
        assert!(
            text.contains("\"/status/live\"") && text.contains("http.route"),
            "probe spans are dropped by the route attribute pincher sets"
        );
    }

    #[test]
    fn nothing_is_propagated_while_traces_are_off() {
        assert!(!enabled());
        let span = tracing::info_span!("off");
        assert!(headers_for(&span).is_empty());
        assert!(call_headers().is_empty());
        assert!(client_span("aws", "sts:GetCallerIdentity").is_none());
    }
}
