//! Limits that keep the service answering: header size, concurrency, and a locked SQLite file
//! (writes wait for it, reads do not).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::both_backends;
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::support::database::Backend;
use crate::support::sqlite_lock::SqliteLock;

/// Sends `count` creates named `{prefix}-{i}` without waiting for their answers.
fn create_in_background(
    app: &TestApp,
    prefix: &str,
    count: usize,
) -> Vec<JoinHandle<reqwest::Result<reqwest::Response>>> {
    (0..count)
        .map(|i| {
            tokio::spawn(
                app.request(Method::POST, "/services")
                    .json(&json!({"name": format!("{prefix}-{i}"), "owner": "t"}))
                    .send(),
            )
        })
        .collect()
}

both_backends! {
    async fn oversized_headers_are_431(backend) {
        let app = spawn_app(backend).await;
        let response = app
            .request(Method::GET, "/services")
            .header("x-padding", "p".repeat(20 * 1024))
            .send()
            .await
            .expect("send");
        assert_problem(response, 431).await;
        let response = app
            .request(Method::GET, "/services")
            .header("x-padding", "p".repeat(8 * 1024))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_locked_sqlite_file_makes_writes_wait_then_503() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.database.busy_timeout_ms = 700).await;
    let file = app.sqlite_file().expect("sqlite");
    let lock = SqliteLock::take(&file);

    let started = Instant::now();
    let response = app
        .create_service(&json!({"name": "blocked", "owner": "t"}))
        .await;
    let waited = started.elapsed();
    let problem = assert_problem(response, 503).await;
    assert!(
        waited >= Duration::from_millis(650),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("database")
    );

    drop(lock);
    let response = app
        .create_service(&json!({"name": "after", "owner": "t"}))
        .await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = app.get("/services").await.json().await.expect("json");
    let names: Vec<_> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("after")],
        "the refused write left nothing behind"
    );
}

#[tokio::test]
async fn reads_are_answered_while_writes_wait_for_a_locked_sqlite_file() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.busy_timeout_ms = 3000;
        s.database.max_connections = 2;
    })
    .await;
    let response = app
        .create_service(&json!({"name": "readable", "owner": "t"}))
        .await;
    assert_eq!(response.status(), 201);
    let file = app.sqlite_file().expect("sqlite");
    let lock = SqliteLock::take(&file);
    // More waiting writes than the pool has connections.
    let writes = create_in_background(&app, "waiting", 4);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let one = app.get("/services/readable").await;
    let list = app.get("/services").await;
    let waited = started.elapsed();
    assert_eq!(one.status(), 200);
    assert_eq!(list.status(), 200);
    assert!(
        waited < Duration::from_secs(1),
        "reads waited {waited:?} behind the writes"
    );
    assert!(writes.iter().all(|w| !w.is_finished()), "the writes wait");

    drop(lock);
    for write in writes {
        let status = write.await.expect("join").expect("send").status();
        assert_eq!(status, 201);
    }
}

#[tokio::test]
async fn a_saturated_server_answers_503_with_retry_after_instead_of_queueing() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.busy_timeout_ms = 2000;
        s.server.max_concurrent_requests = 2;
    })
    .await;
    let file = app.sqlite_file().expect("sqlite");
    let lock = SqliteLock::take(&file);
    let blocked = create_in_background(&app, "slow", 2);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let response = app.get("/services").await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "refused at once, not queued"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    let problem = assert_problem(response, 503).await;
    assert_eq!(problem["type"], "/problems/overloaded");

    drop(lock);
    for task in blocked {
        let status = task.await.expect("join").expect("send").status().as_u16();
        assert!(status == 201 || status == 503, "{status}");
    }
    assert_eq!(app.get("/services").await.status(), 200, "capacity is back");
}

#[tokio::test]
async fn a_request_over_the_timeout_is_abandoned_with_503_and_writes_nothing() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.request_timeout_secs = 1;
        s.database.busy_timeout_ms = 4000;
    })
    .await;
    let file = app.sqlite_file().expect("sqlite");
    let lock = SqliteLock::take(&file);

    let started = Instant::now();
    let response = app
        .create_service(&json!({"name": "too-slow", "owner": "t"}))
        .await;
    let waited = started.elapsed();
    assert!(
        response.headers().contains_key("x-request-id"),
        "the 503 is still a finished request"
    );
    let problem = assert_problem(response, 503).await;
    assert!(
        waited >= Duration::from_millis(950),
        "abandoned early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2500),
        "abandoned late: {waited:?} (the database would have given up at 4 s)"
    );
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("took longer than 1 s"),
        "{problem}"
    );

    drop(lock);
    // The abandoned insert was still queued on its connection; give it time to run and be
    // rolled back, then check it left nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = app.get("/services/too-slow").await;
    assert_problem(response, 404).await;
    let response = app
        .create_service(&json!({"name": "too-slow", "owner": "t"}))
        .await;
    assert_eq!(response.status(), 201, "the name is still free");
}

/// Reads from `stream` until the server closes it; how long that took.
async fn time_until_closed(stream: &mut tokio::net::TcpStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn a_slow_header_client_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.header_read_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /status/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // One header byte every 200 ms: the request would never end.
    let drip = {
        let (mut read, mut write) = stream.into_split();
        let drip = tokio::spawn(async move {
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write.write_all(b"X").await.is_err() {
                    break;
                }
            }
        });
        let closed_after = {
            use tokio::io::AsyncReadExt;
            let started = Instant::now();
            let mut buffer = Vec::new();
            let _ = read.read_to_end(&mut buffer).await;
            started.elapsed()
        };
        drip.abort();
        closed_after
    };
    assert!(drip >= Duration::from_millis(900), "closed after {drip:?}");
    assert!(drip < Duration::from_secs(4), "still open after {drip:?}");

    // A connection that sends nothing at all is closed the same way.
    let mut idle = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let closed = time_until_closed(&mut idle).await;
    assert!(
        closed < Duration::from_secs(4),
        "idle connection open for {closed:?}"
    );
    assert_eq!(app.get("/status/live").await.status(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.max_connections = 2;
        s.server.header_read_timeout_secs = 2;
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let _a = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let _b = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = crate::helpers::client_with_token(None)
        .get(format!("{}/status/live", app.address))
        .send()
        .await
        .expect("send");
    let waited = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}: the two silent connections should have held both slots"
    );
    assert!(waited < Duration::from_secs(6), "waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_bogus_tokens_flood_the_service() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.max_concurrent_requests = 4).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..32)
        .map(|_| {
            let stop = stop.clone();
            let client = crate::helpers::client_with_token(None);
            let url = format!("{}/services", app.address);
            tokio::spawn(async move {
                let mut overloaded = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // A fresh well-formed token each time: no cache can answer it.
                    let token = pincher::domain::token::generate().expect("randomness");
                    if let Ok(response) = client.get(&url).bearer_auth(token.expose()).send().await
                        && response.status() == 503
                    {
                        overloaded += 1;
                    }
                }
                overloaded
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = crate::helpers::client_with_token(None);
    for _ in 0..40 {
        let live = probe
            .get(format!("{}/status/live", app.address))
            .send()
            .await
            .expect("send");
        assert_eq!(
            live.status(),
            200,
            "the liveness probe failed under the flood"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut overloaded = 0;
    for flooder in flooders {
        overloaded += flooder.await.expect("flooder");
    }
    assert!(
        overloaded > 0,
        "the flood never saturated the service; the test proves nothing"
    );
}

#[tokio::test]
async fn postgres_statements_are_cancelled_after_the_statement_timeout() {
    let app = spawn_app_with(Backend::Postgres, |s| s.database.statement_timeout_ms = 200).await;
    let pincher::db::Db::Postgres(pool) = &app.state.db else {
        panic!("a PostgreSQL app");
    };
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(pool)
        .await
        .expect_err("cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled: {err}");
    // The connection stays usable for the next statement.
    assert_eq!(app.get("/services").await.status(), 200);
}

#[tokio::test]
async fn postgres_migrations_are_not_bound_by_the_statement_timeout() {
    let database = crate::support::database::TestDatabase::create(Backend::Postgres).await;
    let app = crate::helpers::spawn_app_unmigrated(&database.url, |s| {
        s.database.statement_timeout_ms = 1;
    })
    .await;
    app.state
        .db
        .migrate()
        .await
        .expect("migrations run past a 1 ms statement timeout");
}
