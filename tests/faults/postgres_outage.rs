//! PostgreSQL stops under load: requests get 503 problem+json (no hang, no crash), readiness
//! fails, and once it is back everything works without restarting pincher. Every write that
//! got a 2xx is there afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::private_postgres::PrivatePostgres;
use crate::support::server::{ServerProcess, client, create_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_under_load_loses_no_acknowledged_write() {
    let postgres = PrivatePostgres::start();
    let url = postgres.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PINCHER_DATABASE__URL", url.as_str()),
        ("PINCHER_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ("PINCHER_SERVER__REQUEST_TIMEOUT_SECS", "5"),
        ("PINCHER_STATUS__CACHE_TTL_MS", "0"),
    ];
    let token = create_token(dir.path(), &env);
    let server = ServerProcess::start(dir.path(), &env);
    let base = server.url();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let client = client(&token);
            let url = format!("{base}/services");
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outcomes: BTreeMap<String, (u16, Duration, String)> = BTreeMap::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("w{w}-{i}");
                    i += 1;
                    let started = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&serde_json::json!({"name": name, "owner": "load"}))
                        .send()
                        .await
                        .expect("pincher keeps answering");
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    outcomes.insert(name, (status, started.elapsed(), content_type));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcomes
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    postgres.stop();
    let http = reqwest::Client::new();
    let mut saw_not_ready = false;
    for _ in 0..40 {
        let ready = http
            .get(format!("{base}/status/ready"))
            .send()
            .await
            .expect("send");
        if ready.status() == 503 {
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_not_ready,
        "/status/ready fails while PostgreSQL is down"
    );
    let live = http
        .get(format!("{base}/status/live"))
        .send()
        .await
        .expect("send");
    assert_eq!(live.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    postgres.resume();
    let back = Instant::now();
    loop {
        let ready = http
            .get(format!("{base}/status/ready"))
            .send()
            .await
            .expect("send");
        if ready.status() == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "not ready again 15 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = BTreeMap::new();
    for writer in writers {
        outcomes.extend(writer.await.expect("join"));
    }
    let acknowledged: Vec<_> = outcomes
        .iter()
        .filter(|(_, (s, _, _))| *s == 201)
        .map(|(n, _)| n.clone())
        .collect();
    let unavailable = outcomes.values().filter(|(s, _, _)| *s == 503).count();
    assert!(unavailable > 0, "some writes met the outage: {outcomes:?}");
    for (name, (status, took, content_type)) in &outcomes {
        assert!(*status == 201 || *status == 503, "{name}: {status}");
        if *status == 503 {
            assert_eq!(content_type, "application/problem+json", "{name}");
        }
        assert!(*took < Duration::from_secs(6), "{name} hung for {took:?}");
    }
    let recovered = outcomes
        .iter()
        .rev()
        .take(6)
        .filter(|(_, (s, _, _))| *s == 201)
        .count();
    assert!(recovered > 0, "writes succeed again after the outage");

    let client = client(&token);
    for name in &acknowledged {
        let response = client
            .get(format!("{base}/services/{name}"))
            .send()
            .await
            .expect("send");
        assert_eq!(
            response.status(),
            200,
            "acknowledged write {name} is missing"
        );
    }
}
