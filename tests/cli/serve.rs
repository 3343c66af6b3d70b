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

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
#[cfg(target_os = "linux")]
fn rss_and_peak(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .expect("a VmRSS and a VmHWM line")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `pincher serve` from a copy of the binary of its own, in a temporary directory, with extra
/// environment variables: the kernel keeps pages another process also maps (the other tests
/// run this same binary), so the original would measure them.
#[cfg(target_os = "linux")]
fn serve_a_private_copy(
    env: &[(&str, &str)],
) -> (tempfile::TempDir, crate::support::server::ServerProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("pincher");
    std::fs::copy(env!("CARGO_BIN_EXE_pincher"), &copy).expect("copy the binary");
    let server = crate::support::server::ServerProcess::start_program(&copy, dir.path(), env);
    (dir, server)
}

#[cfg(target_os = "linux")]
#[test]
fn once_listening_serve_gives_back_the_pages_only_start_up_touched() {
    let (_dir, server) = serve_a_private_copy(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = rss_and_peak(server.pid());
    while seen.0 * 10 > seen.1 * 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = rss_and_peak(server.pid());
    }
    let (rss, peak) = seen;
    assert!(
        rss * 10 <= peak * 6,
        "resident {rss} KiB against a peak of {peak} KiB: start-up pages were not released"
    );
}

/// `RssFile` of process `pid` (resident pages backed by files: its code, mostly), in KiB.
#[cfg(target_os = "linux")]
fn rss_file(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("RssFile:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("an RssFile line")
}

/// One HTTP/1.1 GET of `path` on `address`, its answer read to the end.
#[cfg(target_os = "linux")]
fn get(address: &str, path: &str) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 "), "{path}: no HTTP answer");
}

#[cfg(target_os = "linux")]
#[test]
fn after_its_first_requests_and_a_quiet_spell_serve_gives_back_the_code_they_ran() {
    let (_dir, server) =
        serve_a_private_copy(&[("PINCHER_SERVER__PAGE_OUT_AFTER_QUIET_SECS", "1")]);
    for path in [
        "/status/live",
        "/status",
        "/openapi.json",
        "/metrics",
        "/services",
    ] {
        get(&server.address, path);
    }
    let after_requests = rss_file(server.pid());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut now = after_requests;
    while now * 2 > after_requests && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = rss_file(server.pid());
    }
    assert!(
        now * 2 <= after_requests,
        "file-backed resident memory went from {after_requests} KiB after the requests to \
         {now} KiB after a quiet spell: their code was not given back"
    );
    get(&server.address, "/status/live");
}
