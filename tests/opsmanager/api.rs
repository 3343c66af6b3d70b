//! `GET` and `POST /backups/opsmanager`, served in process on port 0.

use pincher::app::AppState;
use pincher::config::{DatabaseUrl, Settings};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::Env;
use crate::support::opsmanager::{PRIVATE_KEY, PUBLIC_KEY};

/// Starts the app against `env`'s fake, database and backup folder; returns its address.
async fn spawn_app(env: &Env, configure: impl FnOnce(&mut Settings)) -> String {
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
    let app = pincher::routes::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

both_backends! {
    async fn post_backs_up_now_and_get_lists_the_backups(backend) {
        let env = Env::new(backend, 3).await;
        let ids = env.fake.group_ids();
        env.fake.fail_group(&ids[2]);
        let app = spawn_app(&env, |_| {}).await;
        let client = reqwest::Client::new();

        let response = client.post(format!("{app}/backups/opsmanager?all_groups=true")).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["completeness"], "partial", "{body}");
        let outcomes: Vec<_> = body["results"].as_array().expect("array").iter().map(|r| r["outcome"].clone()).collect();
        assert_eq!(outcomes, vec![json!("stored"), json!("stored"), json!("failed")]);
        assert!(env.expected_path(&ids[0]).is_file());

        let again = client.post(format!("{app}/backups/opsmanager?group={}", ids[0])).send().await.expect("send");
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["completeness"], "complete");
        assert_eq!(again["results"][0]["outcome"], "unchanged");

        let listed: Value = client.get(format!("{app}/backups/opsmanager")).send().await.expect("send").json().await.expect("json");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(2), "{listed}");
        assert_eq!(listed["last_success"].as_array().map(Vec::len), Some(2), "{listed}");
        let one: Value = client.get(format!("{app}/backups/opsmanager?group={}", ids[1])).send().await.expect("send").json().await.expect("json");
        assert_eq!(one["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["items"][0]["group_id"], ids[1].as_str());
        assert_eq!(one["items"][0]["version"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_configuration_are_problems() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 1).await;
    let app = spawn_app(&env, |_| {}).await;
    let client = reqwest::Client::new();
    let bad = client
        .get(format!("{app}/backups/opsmanager?group=../etc"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    let none = client
        .post(format!("{app}/backups/opsmanager"))
        .send()
        .await
        .expect("send");
    assert_eq!(none.status().as_u16(), 400);
    let problem: Value = none.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("opsmanager.group_ids"),
        "{problem}"
    );

    let unconfigured = spawn_app(&env, |s| s.opsmanager.base_url = None).await;
    let response = client
        .post(format!("{unconfigured}/backups/opsmanager?all_groups=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503);
    let problem: Value = response.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("opsmanager.base_url"),
        "{problem}"
    );
}
