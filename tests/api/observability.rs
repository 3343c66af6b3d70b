//! `/metrics`, `/status*` and the alert rules, checked with promtool.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_unmigrated, spawn_app_with};

fn promtool() -> String {
    std::env::var("PINCHER_TEST_PROMTOOL").unwrap_or_else(|_| {
        panic!("PINCHER_TEST_PROMTOOL is not set: run the suite with ./scripts/test, which installs promtool (Debian package prometheus)")
    })
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.expect("text")
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

both_backends! {
    async fn request_metrics_are_labelled_by_route_template(backend) {
        let app = spawn_app(backend).await;
        app.create_service(&json!({"name": "billing", "owner": "payments"})).await;
        for _ in 0..3 {
            assert_eq!(app.get("/services/billing").await.status(), 200);
        }
        assert_eq!(app.get("/services/does-not-exist").await.status(), 404);
        assert_eq!(app.get("/no/such/route/xyz").await.status(), 404);
        let response = app.request(Method::DELETE, "/services").send().await.expect("send");
        assert_eq!(response.status(), 405);

        let metrics = scrape(&app).await;
        assert_eq!(sample(&metrics, r#"http_requests_total{method="GET",route="/services/{key}",status="200"}"#), Some(3.0));
        assert_eq!(sample(&metrics, r#"http_requests_total{method="GET",route="/services/{key}",status="404"}"#), Some(1.0));
        assert_eq!(sample(&metrics, r#"http_requests_total{method="POST",route="/services",status="201"}"#), Some(1.0));
        assert_eq!(sample(&metrics, r#"http_requests_total{method="GET",route="unmatched",status="404"}"#), Some(1.0));
        assert_eq!(sample(&metrics, r#"http_requests_total{method="DELETE",route="/services",status="405"}"#), Some(1.0));
        assert_eq!(sample(&metrics, r#"http_request_duration_seconds_count{method="GET",route="/services/{key}"}"#), Some(4.0));
        assert_eq!(sample(&metrics, "http_requests_in_flight"), Some(1.0), "the scrape itself is in flight");
        assert_eq!(sample(&metrics, "pincher_services_registered"), Some(1.0));
        assert!(sample(&metrics, r#"pincher_db_pool_connections{state="open"}"#).is_some_and(|v| v >= 1.0));
        assert!(metrics.contains(&format!("pincher_build_info{{git_sha=\"{}\",version=\"{}\"}} 1", pincher::metrics::GIT_SHA, env!("CARGO_PKG_VERSION"))));
        for process_metric in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"] {
            assert!(sample(&metrics, process_metric).is_some(), "{process_metric}");
        }
        assert!(!metrics.contains("billing"), "raw paths never become labels");
        assert!(!metrics.contains("xyz"), "raw paths never become labels");
    }

    async fn promtool_finds_nothing_wrong_with_the_metrics(backend) {
        let app = spawn_app(backend).await;
        app.create_service(&json!({"name": "billing", "owner": "payments"})).await;
        app.get("/services").await;
        let metrics = scrape(&app).await;
        let mut child = Command::new(promtool())
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        child.stdin.take().expect("stdin").write_all(metrics.as_bytes()).expect("write");
        let output = child.wait_with_output().expect("promtool");
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{report}");
        assert_eq!(report.trim(), "", "promtool reports: {report}");
    }

    async fn status_passes_with_a_healthy_database(backend) {
        let app = spawn_app(backend).await;
        let response = app.get("/status").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/health+json");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "pass");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        let check = &body["checks"]["database:responseTime"][0];
        assert_eq!(check["status"], "pass");
        assert_eq!(check["componentType"], "datastore");
        assert_eq!(check["observedUnit"], "ms");
        assert!(check["observedValue"].as_f64().is_some_and(|v| v >= 0.0));
        assert!(check["time"].is_string());
        assert!(check.get("output").is_none());

        for path in ["/status/live", "/status/ready"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["status"], "pass", "{path}");
        }
    }

    async fn status_results_are_cached_briefly(backend) {
        let app = spawn_app_with(backend, |s| s.status.cache_ttl_ms = 60_000).await;
        let first: Value = app.get("/status").await.json().await.expect("json");
        let second: Value = app.get("/status").await.json().await.expect("json");
        assert_eq!(first["checks"]["database:responseTime"][0]["time"], second["checks"]["database:responseTime"][0]["time"]);

        let app = spawn_app_with(backend, |s| s.status.cache_ttl_ms = 0).await;
        let first: Value = app.get("/status").await.json().await.expect("json");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let second: Value = app.get("/status").await.json().await.expect("json");
        assert_ne!(first["checks"]["database:responseTime"][0]["time"], second["checks"]["database:responseTime"][0]["time"]);
    }

    async fn metrics_can_require_a_bearer_token(backend) {
        let app = spawn_app_with(backend, |s| s.metrics.token = Some("scrape-secret-789".to_owned().into())).await;
        let response = app.get("/metrics").await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"pincher-metrics\"");
        assert_problem(response, 401).await;
        let response = app.request(Method::GET, "/metrics").bearer_auth("wrong").send().await.expect("send");
        assert_problem(response, 401).await;
        let response = app.request(Method::GET, "/metrics").bearer_auth("scrape-secret-789").send().await.expect("send");
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("text");
        assert!(text.contains("http_requests_total"));
        assert!(!text.contains("scrape-secret-789"));
    }

    async fn metrics_can_move_to_their_own_listener(backend) {
        let app = spawn_app_with(backend, |s| s.metrics.listen = Some("127.0.0.1:0".into())).await;
        assert_problem(app.get("/metrics").await, 404).await;
        let index: Value = app.get("/").await.json().await.expect("json");
        assert!(index["links"].get("metrics").is_none());
        let router = pincher::routes::metrics::standalone(app.state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let response = reqwest::get(format!("http://{address}/metrics")).await.expect("send");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_database_that_is_down_fails_status_and_readiness_but_not_liveness() {
    let app = spawn_app_unmigrated(
        "postgres://postgres:db-secret-321@127.0.0.1:1/pincher",
        |s| {
            s.database.acquire_timeout_secs = 1;
            s.status.check_timeout_ms = 3000;
            s.opsmanager.private_key = Some("om-secret-654".to_owned().into());
            s.metrics.token = None;
        },
    )
    .await;
    let response = app.get("/status").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/health+json"
    );
    let text = response.text().await.expect("text");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["status"], "fail");
    let check = &body["checks"]["database:responseTime"][0];
    assert_eq!(check["status"], "fail");
    assert!(
        check["output"].as_str().is_some_and(|o| !o.is_empty()),
        "{body}"
    );

    let live = app.get("/status/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/status/ready").await;
    assert_eq!(ready.status(), 503);
    let ready_text = ready.text().await.expect("text");

    let response = app
        .request(Method::GET, "/services")
        // Shaped like a real token, so only the database can tell.
        .bearer_auth(format!("pincher_{}", "a".repeat(43)))
        .send()
        .await
        .expect("send");
    let problem = assert_problem(response, 503).await;
    let metrics = app.get("/metrics").await.text().await.expect("text");

    for shown in [&text, &ready_text, &metrics, &problem.to_string()] {
        assert!(!shown.contains("db-secret-321"), "{shown}");
        assert!(!shown.contains("om-secret-654"), "{shown}");
    }
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    for args in [
        vec!["check", "rules", "infrastructure/alerts/pincher.rules.yaml"],
        vec![
            "test",
            "rules",
            "infrastructure/alerts/pincher.rules.test.yaml",
        ],
        vec!["check", "config", "infrastructure/prometheus.yaml"],
    ] {
        let output = Command::new(promtool())
            .args(&args)
            .current_dir(root)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
