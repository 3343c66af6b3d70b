//! `pincher serve`: zero-configuration start on SQLite, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::pincher;

/// Starts `pincher serve --port 0` in `dir` and returns it with its address.
fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = pincher(dir)
        .args(["--log-format", "json", "serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pincher serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                && log["message"] == "listening"
            {
                let _ = tx.send(log["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("pincher serve reports its address");
    (child, address)
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
    let (mut child, address) = start(dir.path());
    let client = reqwest::Client::new();
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
