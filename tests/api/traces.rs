//! Traces: `pincher serve` and the CLI export their spans over OTLP/HTTP to a receiver that
//! decodes them with the opentelemetry-proto types; an incoming `traceparent` is honoured and
//! the trace goes on to Ops Manager, Chef and AWS in the headers of their calls.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::support::opsmanager::{FakeOpsManager, PRIVATE_KEY, PUBLIC_KEY};
use crate::support::otlp::{Exported, Receiver, text};
use crate::support::recording::RecordingServer;
use crate::support::server::{ServerProcess, pincher_command};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trace id and parent span id a `traceparent` header names.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00", "{traceparent}");
    (fields[1].to_owned(), fields[2].to_owned())
}

/// Waits until the spans satisfy `done` (the exporter sends in batches).
async fn wait_for(
    receiver: &Receiver,
    what: &str,
    done: impl Fn(&[Exported]) -> bool,
) -> Vec<Exported> {
    for _ in 0..100 {
        let spans = receiver.spans();
        if done(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<String> = receiver
        .spans()
        .iter()
        .map(|e| e.span.name.clone())
        .collect();
    panic!("no {what} among the exported spans: {names:?}");
}

/// Whether `span`'s chain of parents among `spans` reaches `ancestor`.
fn descends(spans: &[Exported], span: &Exported, ancestor: &[u8]) -> bool {
    let mut parent = span.span.parent_span_id.clone();
    for _ in 0..spans.len() {
        if parent == ancestor {
            return true;
        }
        match spans.iter().find(|e| e.span.span_id == parent) {
            Some(up) => parent = up.span.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

fn server_spans<'a>(spans: &'a [Exported], request_id: &str) -> Vec<&'a Exported> {
    spans
        .iter()
        .filter(|e| {
            e.span.kind == SpanKind::Server as i32
                && text(&e.span.attributes, "request_id").as_deref() == Some(request_id)
        })
        .collect()
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const BACKUP_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const AWS_TRACE: &str = "5b8efff798038103d269b633813fc60c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_server_span_in_its_callers_trace_and_the_trace_goes_on_to_ops_manager_and_aws()
 {
    let receiver = Receiver::start().await;
    let opsmanager = FakeOpsManager::start(1).await;
    let aws = RecordingServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = dir.path().join("backups");
    let groups = opsmanager.group_ids().join(",");
    let server = ServerProcess::start(
        dir.path(),
        &[
            ("PINCHER_AUTH__MODE", "disabled"),
            ("PINCHER_TELEMETRY__OTLP_ENDPOINT", receiver.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("PINCHER_TELEMETRY__LEVEL", "info,pincher::db=debug"),
            ("PINCHER_OPSMANAGER__BASE_URL", opsmanager.base_url.as_str()),
            ("PINCHER_OPSMANAGER__PUBLIC_KEY", PUBLIC_KEY),
            ("PINCHER_OPSMANAGER__PRIVATE_KEY", PRIVATE_KEY),
            ("PINCHER_OPSMANAGER__GROUP_IDS", groups.as_str()),
            ("PINCHER_BACKUPS__DIR", backups.to_str().expect("path")),
            ("PINCHER_AWS__ENDPOINT_URL", aws.url.as_str()),
            ("PINCHER_AWS__REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDTRACES"),
            ("AWS_SECRET_ACCESS_KEY", "traces-secret"),
            ("PINCHER_AWS__ATTEMPT_TIMEOUT_SECS", "5"),
        ],
    );
    let http = reqwest::Client::new();
    let get = |path: &str, request_id: &str, traceparent: Option<String>| {
        let mut request = http
            .get(format!("{}{path}", server.url()))
            .header("x-request-id", request_id);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        request.send()
    };

    let live = get(
        "/status/live",
        "traced-live",
        Some(format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")),
    )
    .await
    .expect("send");
    assert_eq!(live.status().as_u16(), 200);
    let services = get("/services", "untraced-list", None).await.expect("send");
    assert_eq!(services.status().as_u16(), 200);
    let backup = http
        .post(format!("{}/actions/opsmanager.backup/runs", server.url()))
        .header("x-request-id", "traced-backup")
        .header("traceparent", format!("00-{BACKUP_TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(backup.status().as_u16(), 201);
    let run: serde_json::Value = backup.json().await.expect("json");
    assert_eq!(run["outcome"], "ok", "{run}");
    let report = get(
        "/reports/aws/ec2",
        "traced-aws",
        Some(format!("00-{AWS_TRACE}-{CALLER_SPAN}-01")),
    )
    .await
    .expect("send");
    assert!(
        report.status().is_server_error(),
        "the recording server is no AWS: {}",
        report.status()
    );

    let spans = wait_for(&receiver, "server span of each request", |spans| {
        [
            "traced-live",
            "untraced-list",
            "traced-backup",
            "traced-aws",
        ]
        .iter()
        .all(|id| !server_spans(spans, id).is_empty())
            && spans.iter().any(|e| e.span.name == "opsmanager.backup")
    })
    .await;

    // One server span per request, named by method and route, with the service and request.
    let live = server_spans(&spans, "traced-live");
    assert_eq!(live.len(), 1, "one server span per request");
    let live = live[0];
    assert_eq!(live.span.name, "GET /status/live");
    assert_eq!(hex(&live.span.trace_id), CALLER_TRACE, "the caller's trace");
    assert_eq!(
        hex(&live.span.parent_span_id),
        CALLER_SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(
        text(&live.span.attributes, "http.route").as_deref(),
        Some("/status/live")
    );
    assert_eq!(
        text(&live.span.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        text(&live.span.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        text(&live.resource, "service.name").as_deref(),
        Some("pincher")
    );
    assert_eq!(
        text(&live.resource, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );

    let list = server_spans(&spans, "untraced-list");
    assert_eq!(list.len(), 1);
    assert!(
        list[0].span.parent_span_id.is_empty(),
        "no traceparent: a trace of its own"
    );
    assert_ne!(hex(&list[0].span.trace_id), CALLER_TRACE);
    assert_eq!(list[0].span.name, "GET /services");
    // SQL at debug, when `telemetry.level` asks for it: a client span under the request.
    let sql = spans
        .iter()
        .find(|e| e.span.name == "db services.list")
        .expect("the SQL span");
    assert_eq!(sql.span.kind, SpanKind::Client as i32);
    assert!(descends(&spans, sql, &list[0].span.span_id));

    // The backup run and its Ops Manager calls are in the caller's trace, under the request.
    let request = server_spans(&spans, "traced-backup");
    assert_eq!(request.len(), 1);
    let request = request[0];
    assert_eq!(hex(&request.span.trace_id), BACKUP_TRACE);
    let action = spans
        .iter()
        .find(|e| e.span.name == "opsmanager.backup")
        .expect("the action's span");
    assert_eq!(hex(&action.span.trace_id), BACKUP_TRACE);
    assert!(
        descends(&spans, action, &request.span.span_id),
        "the run is under its request"
    );
    let calls: Vec<&Exported> = spans
        .iter()
        .filter(|e| e.span.kind == SpanKind::Client as i32 && hex(&e.span.trace_id) == BACKUP_TRACE)
        .collect();
    let names: Vec<&str> = calls.iter().map(|e| e.span.name.as_str()).collect();
    assert!(names.contains(&"get_automation_config"), "{names:?}");
    let sent = opsmanager.traceparents();
    assert!(!sent.is_empty());
    for traceparent in &sent {
        let traceparent = traceparent
            .as_deref()
            .expect("every Ops Manager request carries a traceparent");
        let (trace, parent) = parts(traceparent);
        assert_eq!(trace, BACKUP_TRACE);
        assert!(
            calls.iter().any(|call| hex(&call.span.span_id) == parent),
            "the parent of {traceparent} is an exported client span"
        );
    }

    // AWS calls carry the trace of the report's request.
    let aws_headers = aws.requests();
    assert!(!aws_headers.is_empty(), "the report called AWS");
    assert!(
        aws_headers
            .iter()
            .all(|request| request.contains(&format!("\"traceparent\": \"00-{AWS_TRACE}-"))),
        "{aws_headers:?}"
    );
    let aws_calls: Vec<&str> = spans
        .iter()
        .filter(|e| e.span.kind == SpanKind::Client as i32 && hex(&e.span.trace_id) == AWS_TRACE)
        .map(|e| e.span.name.as_str())
        .collect();
    assert!(
        aws_calls
            .iter()
            .any(|name| name.starts_with("sts:") || name.starts_with("ec2:")),
        "{aws_calls:?}"
    );
    let failed = server_spans(&spans, "traced-aws");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].span.status.as_ref().map(|s| s.code),
        Some(2),
        "a 5xx answer is an error span"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_no_trace_header_leaves_pincher() {
    let opsmanager = FakeOpsManager::start(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = dir.path().join("backups");
    let groups = opsmanager.group_ids().join(",");
    let server = ServerProcess::start(
        dir.path(),
        &[
            ("PINCHER_AUTH__MODE", "disabled"),
            ("PINCHER_OPSMANAGER__BASE_URL", opsmanager.base_url.as_str()),
            ("PINCHER_OPSMANAGER__PUBLIC_KEY", PUBLIC_KEY),
            ("PINCHER_OPSMANAGER__PRIVATE_KEY", PRIVATE_KEY),
            ("PINCHER_OPSMANAGER__GROUP_IDS", groups.as_str()),
            ("PINCHER_BACKUPS__DIR", backups.to_str().expect("path")),
        ],
    );
    let backup = reqwest::Client::new()
        .post(format!("{}/actions/opsmanager.backup/runs", server.url()))
        .header("traceparent", format!("00-{BACKUP_TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(backup.status().as_u16(), 201);
    let sent = opsmanager.traceparents();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(Option::is_none), "{sent:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_command_starts_a_trace_that_goes_on_to_chef() {
    let receiver = Receiver::start().await;
    let chef = RecordingServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chef/unknown_key.pem");
    let url = receiver.url.clone();
    let chef_url = chef.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        pincher_command(dir.path())
            .env("PINCHER_TELEMETRY__OTLP_ENDPOINT", url)
            .env("PINCHER_CHEF__SERVER_URL", chef_url)
            .env("PINCHER_CHEF__CLIENT_NAME", "traces")
            .env("PINCHER_CHEF__CLIENT_KEY", key)
            .args(["chef", "status"])
            .output()
            .expect("run pincher")
    })
    .await
    .expect("join");
    let sent = chef.requests();
    assert!(
        !sent.is_empty(),
        "pincher called Chef: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let traceparent = sent[0]
        .split("\"traceparent\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no traceparent in {}", sent[0]))
        .to_owned();
    let (trace, parent) = parts(&traceparent);
    // The process flushes its spans as it exits.
    let spans = receiver.spans();
    let call = spans
        .iter()
        .find(|e| hex(&e.span.span_id) == parent)
        .unwrap_or_else(|| panic!("the span named by {traceparent} was exported"));
    assert_eq!(hex(&call.span.trace_id), trace);
    assert_eq!(call.span.kind, SpanKind::Client as i32);
    assert_eq!(
        text(&call.span.attributes, "rpc.system").as_deref(),
        Some("chef")
    );
}
