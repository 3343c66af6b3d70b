//! SIGTERM while requests are in flight: they finish, new connections are refused, and the
//! process exits 0 within the drain timeout (plus a short bound for closing the database).

use std::time::{Duration, Instant};

use crate::support::server::{ServerProcess, client, create_token};
use crate::support::sqlite_lock::SqliteLock;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_every_accepted_request_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PINCHER_DATABASE__BUSY_TIMEOUT_MS", "10000"),
        ("PINCHER_SERVER__DRAIN_TIMEOUT_SECS", "15"),
    ];
    let token = create_token(dir.path(), &env);
    let mut server = ServerProcess::start(dir.path(), &env);
    let base = server.url();

    // Background readers on keep-alive connections, each outcome with when its request started.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let client = client(&token);
            let url = format!("{base}/services");
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(3) {
                    let sent = Instant::now();
                    match client.get(&url).send().await {
                        Ok(response) => outcomes.push((sent, Ok(response.status().as_u16()))),
                        Err(e) if e.is_connect() => break,
                        Err(e) => outcomes.push((sent, Err(format!("{e:?}")))),
                    }
                }
                outcomes
            })
        })
        .collect();

    // Writers that will be in flight (waiting on the lock) when SIGTERM arrives.
    let lock = SqliteLock::take(&dir.path().join("pincher.db"));
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let request = client(&token)
                .post(format!("{base}/services"))
                .json(&serde_json::json!({"name": format!("in-flight-{i}"), "owner": "t"}));
            tokio::spawn(request.send())
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sigterm_at = Instant::now();
    server.sigterm();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let refused = reqwest::Client::new()
        .get(format!("{base}/status/live"))
        .send()
        .await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "new connections are refused while draining: {refused:?}"
    );
    drop(lock);

    for writer in writers {
        let response = writer
            .await
            .expect("join")
            .expect("an in-flight request is never cut off");
        assert_eq!(response.status(), 201);
    }
    // Every read is answered 200, reads included that ran while the writes waited for the
    // lock. The one exception is HTTP/1.1's own race: a request sent on an idle keep-alive
    // connection as the draining server closes it (or into the listen queue as the listener
    // closes) gets no answer at all, and a client retries it (RFC 9112, 9.3.1). A request
    // sent well before SIGTERM was read by then, so it must have been answered.
    let mut answered = 0;
    let mut while_writes_waited = 0;
    for reader in readers {
        for (sent, outcome) in reader.await.expect("join") {
            match outcome {
                Ok(status) => {
                    assert_eq!(status, 200, "a read was refused");
                    answered += 1;
                    if sent < sigterm_at {
                        while_writes_waited += 1;
                    }
                }
                Err(e) => assert!(
                    sent + Duration::from_millis(50) > sigterm_at,
                    "a request sent {:?} before SIGTERM failed: {e}",
                    sigterm_at - sent
                ),
            }
        }
    }
    assert!(answered > 0);
    assert!(
        while_writes_waited > 0,
        "reads were held up behind the waiting writes"
    );
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let lines = server.lines.lock().expect("lock").clone();
    assert!(lines.iter().any(|l| l["message"] == "received SIGTERM"));
    assert!(lines.iter().any(|l| l["message"] == "stopped"));
}

#[tokio::test]
async fn the_drain_timeout_bounds_how_long_shutdown_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PINCHER_DATABASE__BUSY_TIMEOUT_MS", "30000"),
        ("PINCHER_SERVER__DRAIN_TIMEOUT_SECS", "1"),
    ];
    let token = create_token(dir.path(), &env);
    let mut server = ServerProcess::start(dir.path(), &env);
    let lock = SqliteLock::take(&dir.path().join("pincher.db"));
    let stuck = tokio::spawn(
        client(&token)
            .post(format!("{}/services", server.url()))
            .json(&serde_json::json!({"name": "stuck", "owner": "t"}))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    drop(lock);
    let _ = stuck.await;
    let lines = server.lines.lock().expect("lock").clone();
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("drain timeout"))
    }));
    // The write it gave up on still holds a database connection; exiting does not wait for it.
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("connections still in use"))
    }));
}
