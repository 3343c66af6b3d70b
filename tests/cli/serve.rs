//! `pincher serve`: zero-configuration start on SQLite, graceful shutdown on SIGTERM, and one
//! access-log line per request.

use std::time::Duration;

use crate::support::server::{ServerProcess, client, create_token};

#[tokio::test]
async fn serve_runs_with_no_configuration_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = create_token(dir.path(), &[]);
    let mut server = ServerProcess::start(dir.path(), &[]);
    let client = client(&token);
    let response = client
        .post(format!("{}/services", server.url()))
        .json(&serde_json::json!({"name": "zero-setup", "owner": "me"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    assert!(
        dir.path().join("pincher.db").exists(),
        "the default SQLite file is created"
    );

    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));

    let mut server = ServerProcess::start(dir.path(), &[]);
    let body: serde_json::Value = client
        .get(format!("{}/services/zero-setup", server.url()))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(body["owner"], "me", "data survives a restart");
    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[tokio::test]
async fn every_request_gets_one_access_log_line_with_its_request_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = create_token(dir.path(), &[]);
    let mut server = ServerProcess::start(dir.path(), &[]);
    let response = client(&token)
        .get(format!("{}/services/nope", server.url()))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(10)).code(), Some(0));
    std::thread::sleep(Duration::from_millis(100));

    let lines = server.lines.lock().expect("lock").clone();
    let access: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "pincher::access")
        .collect();
    assert_eq!(access.len(), 1, "{lines:#?}");
    let line = access[0];
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/services/{key}");
    assert_eq!(line["status"], 404);
    assert!(line["latency_ms"].as_f64().is_some());
    assert_eq!(line["spans"][0]["request_id"], "req-abc-123");
}
