//! An OTLP/HTTP trace receiver on port 0 that decodes every export with the
//! opentelemetry-proto types, as a collector would, and keeps the spans for assertions.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// An OTLP/HTTP receiver on port 0 keeping every export it is sent.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, for `telemetry.otlp_endpoint`.
    pub url: String,
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

/// One exported span with the resource attributes it came with.
pub struct Exported {
    /// The resource attributes (`service.name`, …).
    pub resource: Vec<KeyValue>,
    /// The span.
    pub span: Span,
}

impl Receiver {
    /// Starts one.
    pub async fn start() -> Self {
        let exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
        let kept = exports.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let kept = kept.clone();
                async move {
                    assert_eq!(
                        headers.get("content-type").and_then(|v| v.to_str().ok()),
                        Some("application/x-protobuf"),
                        "OTLP/HTTP in its protobuf encoding"
                    );
                    let export = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                    kept.lock().expect("lock").push(export);
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, exports }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Exported> {
        let mut spans = Vec::new();
        for export in self.exports.lock().expect("lock").iter() {
            for resource_spans in &export.resource_spans {
                let resource = resource_spans
                    .resource
                    .clone()
                    .map(|r| r.attributes)
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push(Exported {
                            resource: resource.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        spans
    }
}

/// An attribute's value as text (integers in decimal).
pub fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match &a.value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Some(s.clone()),
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(i)),
            }) => Some(i.to_string()),
            _ => None,
        })
}
