//! `pincher serve`: zero-configuration start on SQLite, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::pincher;

type Lines = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// Starts `pincher serve --port 0` in `dir` and returns it with its address.
fn start(dir: &std::path::Path) -> (Child, String) {
    let (child, address, _) = start_logged(dir);
    (child, address)
}

/// Like [`start`], also collecting every log line (each must be JSON).
fn start_logged(dir: &std::path::Path) -> (Child, String, Lines) {
    let mut child = pincher(dir)
        .args(["--log-format", "json", "serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pincher serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let lines: Lines = Default::default();
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let log: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            if log["message"] == "listening" {
                let _ = tx.send(log["address"].as_str().unwrap_or_default().to_owned());
            }
            collected.lock().expect("lock").push(log);
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("pincher serve reports its address");
    (child, address, lines)
}

/// Creates an admin token with the CLI in `dir`'s default database.
fn create_token(dir: &std::path::Path) -> String {
    let output = pincher(dir)
        .args(["tokens", "create", "--name", "test", "--scope", "admin"])
        .output()
        .expect("run pincher tokens create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn serve_runs_with_no_configuration_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = create_token(dir.path());
    let (mut child, address) = start(dir.path());
    let client = client(&token);
    let response = client
        .post(format!("http://{address}/services"))
        .json(&serde_json::json!({"name": "zero-setup", "owner": "me"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    assert!(
        dir.path().join("pincher.db").exists(),
        "the default SQLite file is created"
    );

    sigterm(&child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pincher did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));

    let (mut child, address) = start(dir.path());
    let body: serde_json::Value = client
        .get(format!("http://{address}/services/zero-setup"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(body["owner"], "me", "data survives a restart");
    sigterm(&child);
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

#[tokio::test]
async fn every_request_gets_one_access_log_line_with_its_request_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = create_token(dir.path());
    let (mut child, address, lines) = start_logged(dir.path());
    let client = client(&token);
    let response = client
        .get(format!("http://{address}/services/nope"))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    sigterm(&child);
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    std::thread::sleep(Duration::from_millis(100));

    let lines = lines.lock().expect("lock").clone();
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
