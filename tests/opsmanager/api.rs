//! `GET` and `POST /backups/opsmanager`, served in process on port 0.

use pincher::config::{DatabaseUrl, Settings};
use pincher::domain::token::Scope;
use pincher::middleware::AppState;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::Env;
use crate::support::opsmanager::{PRIVATE_KEY, PUBLIC_KEY};

/// Starts the app against `env`'s fake, database and backup folder; returns its address and
/// a client holding a write token.
async fn spawn_app(env: &Env, configure: impl FnOnce(&mut Settings)) -> (String, reqwest::Client) {
    let mut settings = Settings::default();
    settings.database.url = DatabaseUrl::new(env.database.url.clone());
    settings.backups.dir = env.dir.clone();
    settings.opsmanager.base_url = url::Url::parse(&env.fake.base_url).ok();
    settings.opsmanager.public_key = Some(PUBLIC_KEY.into());
    settings.opsmanager.private_key = Some(SecretString::from(PRIVATE_KEY));
    settings.opsmanager.retry_delay_ms = 5;
    settings.opsmanager.max_retries = 1;
    configure(&mut settings);
    let state = AppState::new(settings).expect("state");
    state.db.migrate().await.expect("migrate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let token = pincher::domain::token::generate().expect("randomness");
    pincher::db::tokens::create(
        &state.db,
        &format!("om-tests-{}", uuid::Uuid::new_v4().simple()),
        Scope::Write,
        &token.hash,
        &token.prefix,
        None,
    )
    .await
    .expect("store a token");
    let app = pincher::routes::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, crate::support::server::client(token.expose()))
}

both_backends! {
    async fn post_backs_up_now_and_get_lists_the_backups(backend) {
        let env = Env::new(backend, 3).await;
        let ids = env.fake.group_ids();
        env.fake.fail_group(&ids[2]);
        let (app, client) = spawn_app(&env, |_| {}).await;

        let response = client.post(format!("{app}/backups/opsmanager?all_groups=true")).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 201);
        let run: Value = response.json().await.expect("json");
        assert_eq!(run["action"], "opsmanager.backup");
        assert_eq!(run["outcome"], "partial", "{run}");
        let body = &run["output"];
        assert_eq!(body["completeness"], "partial", "{body}");
        let outcomes: Vec<_> = body["results"].as_array().expect("array").iter().map(|r| r["outcome"].clone()).collect();
        assert_eq!(outcomes, vec![json!("stored"), json!("stored"), json!("failed")]);
        let targets: Vec<_> = run["results"].as_array().expect("array").iter().map(|r| r["result"].clone()).collect();
        assert_eq!(targets, vec![json!("changed"), json!("changed"), json!("failed")]);
        assert!(env.expected_path(&ids[0]).is_file());

        let again = client.post(format!("{app}/backups/opsmanager?group={}", ids[0])).send().await.expect("send");
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["output"]["completeness"], "complete");
        assert_eq!(again["output"]["results"][0]["outcome"], "unchanged");
        assert_eq!(again["results"][0]["result"], "unchanged");

        let listed: Value = client.get(format!("{app}/backups/opsmanager")).send().await.expect("send").json().await.expect("json");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(2), "{listed}");
        assert_eq!(listed["last_success"].as_array().map(Vec::len), Some(2), "{listed}");
        let one: Value = client.get(format!("{app}/backups/opsmanager?group={}", ids[1])).send().await.expect("send").json().await.expect("json");
        assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["items"][0]["group_id"], ids[1].as_str());
        assert_eq!(one["items"][0]["version"], 1);

        let metrics = client.get(format!("{app}/metrics")).send().await.expect("send").text().await.expect("text");
        let sample = |series: String| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&series).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        for id in &ids[..2] {
            let last = sample(format!("pincher_opsmanager_last_backup_success_timestamp_seconds{{group=\"{id}\"}}"))
                .unwrap_or_else(|| panic!("last success of {id}:\n{metrics}"));
            assert!((now - last).abs() < 120.0, "{last} vs {now}");
            assert_eq!(sample(format!("pincher_opsmanager_backups_stored{{group=\"{id}\"}}")), Some(1.0));
        }
        assert_eq!(sample(format!("pincher_opsmanager_backup_runs_total{{group=\"{}\",outcome=\"stored\"}}", ids[0])), Some(1.0));
        assert_eq!(sample(format!("pincher_opsmanager_backup_runs_total{{group=\"{}\",outcome=\"unchanged\"}}", ids[0])), Some(1.0));
        assert_eq!(sample(format!("pincher_opsmanager_backup_runs_total{{group=\"{}\",outcome=\"failed\"}}", ids[2])), Some(1.0));
        assert!(sample(format!("pincher_opsmanager_last_backup_success_timestamp_seconds{{group=\"{}\"}}", ids[2])).is_none());
        assert!(!metrics.contains(PRIVATE_KEY));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_configuration_are_problems() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 1).await;
    let (app, client) = spawn_app(&env, |_| {}).await;
    let bad = client
        .get(format!("{app}/backups/opsmanager?group=../etc"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    let bad_post = client
        .post(format!("{app}/backups/opsmanager?group=../etc"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad_post.status().as_u16(), 400);
    let none = client
        .post(format!("{app}/backups/opsmanager"))
        .send()
        .await
        .expect("send");
    assert_eq!(none.status().as_u16(), 201, "the run is recorded, failed");
    let run: Value = none.json().await.expect("json");
    assert_eq!(run["outcome"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("opsmanager.group_ids"),
        "{run}"
    );

    let (unconfigured, client) = spawn_app(&env, |s| s.opsmanager.base_url = None).await;
    let response = client
        .post(format!("{unconfigured}/backups/opsmanager?all_groups=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 201);
    let run: Value = response.json().await.expect("json");
    assert_eq!(run["outcome"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("opsmanager.base_url"),
        "{run}"
    );
}

both_backends! {
    async fn a_backup_slower_than_the_request_timeout_is_answered_202_and_ends_ok(backend) {
        let env = Env::new(backend, 2).await;
        let ids = env.fake.group_ids();
        env.fake.set_latency(std::time::Duration::from_millis(700));
        let (app, client) = spawn_app(&env, |s| s.server.request_timeout_secs = 1).await;

        let started = std::time::Instant::now();
        let response = client.post(format!("{app}/backups/opsmanager?all_groups=true")).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 202);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "answered within the request timeout");
        let location = response.headers()["location"].to_str().expect("text").to_owned();
        let run: Value = response.json().await.expect("json");
        assert_eq!(run["outcome"], "running", "{run}");
        assert_eq!(location, format!("/runs/{}", run["id"].as_str().expect("id")));

        let mut run = run;
        for _ in 0..200 {
            if run["outcome"] != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            run = client.get(format!("{app}{location}")).send().await.expect("send").json().await.expect("json");
        }
        assert_eq!(run["outcome"], "ok", "{run}");
        assert!(started.elapsed() > std::time::Duration::from_secs(1), "the run outlived the request timeout");
        assert_eq!(run["output"]["summary"]["stored"], 2, "{run}");
        for id in &ids {
            assert!(env.expected_path(id).is_file());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_checks_ops_manager_and_warns_when_it_refuses() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 1).await;
    let (app, client) = spawn_app(&env, |s| s.status.cache_ttl_ms = 0).await;
    let health: Value = client
        .get(format!("{app}/status"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "pass", "{health}");
    assert_eq!(
        health["checks"]["opsmanager:responseTime"][0]["status"], "pass",
        "{health}"
    );

    let (app, client) = spawn_app(&env, |s| {
        s.status.cache_ttl_ms = 0;
        s.opsmanager.private_key = Some(SecretString::from("wrong-private-key"));
    })
    .await;
    let response = client
        .get(format!("{app}/status"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status().as_u16(),
        200,
        "an optional dependency only warns"
    );
    let text = response.text().await.expect("text");
    assert!(
        !text.contains("wrong-private-key") && !text.contains(PRIVATE_KEY),
        "{text}"
    );
    let health: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(health["status"], "warn", "{health}");
    let check = &health["checks"]["opsmanager:responseTime"][0];
    assert_eq!(check["status"], "warn");
    assert!(
        check["output"]
            .as_str()
            .is_some_and(|o| o.contains("401") || o.to_lowercase().contains("key")),
        "{check}"
    );
}

both_backends! {
    async fn a_run_cut_short_by_shutdown_is_recorded_abandoned(backend) {
        use crate::harness::RunPincher;
        use crate::support::server::{ServerProcess, client, create_token};

        let env = Env::new(backend, 1).await;
        env.fake.set_latency(std::time::Duration::from_secs(4));
        let mut vars = env.vars();
        vars.retain(|(key, _)| key != "PINCHER_LOG");
        vars.push(("PINCHER_SERVER__DRAIN_TIMEOUT_SECS".into(), "1".into()));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let dir = env.database.dir.path();
        let token = create_token(dir, &vars);
        let mut server = ServerProcess::start(dir, &vars);

        let response = client(&token)
            .post(format!("{}/backups/opsmanager?all_groups=true", server.url()))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 202);
        let run: Value = response.json().await.expect("json");
        let id = run["id"].as_str().expect("id").to_owned();

        server.sigterm();
        let status = server.wait_exit(std::time::Duration::from_secs(15));
        assert!(status.success(), "{status:?}");

        let shown = env.json(&["runs", "show", &id], 0).await;
        let log: Vec<String> = server.lines.lock().expect("lock").iter().map(ToString::to_string).collect();
        assert_eq!(shown["outcome"], "abandoned", "{shown}\nserver log:\n{}", log.join("\n"));
        assert!(shown["finished_at"].is_string(), "{shown}");
        assert!(shown["error"].as_str().is_some_and(|e| e.contains("shut down")), "{shown}");
    }
}
