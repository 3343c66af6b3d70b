//! The Ops Manager client against the fake: digest challenges, nonce counts, stale nonces,
//! paging, retries and error messages.

use pincher::config::OpsManagerSettings;
use pincher::plugins::opsmanager::{GroupId, OpsManagerClient, OpsManagerError};
use secrecy::SecretString;

use crate::support::opsmanager::{FakeOpsManager, PRIVATE_KEY, PUBLIC_KEY};

fn client(fake: &FakeOpsManager, private_key: &str) -> OpsManagerClient {
    let settings = OpsManagerSettings {
        base_url: url::Url::parse(&fake.base_url).ok(),
        public_key: Some(PUBLIC_KEY.into()),
        private_key: Some(SecretString::from(private_key.to_owned())),
        max_retries: 2,
        retry_delay_ms: 5,
        ..OpsManagerSettings::default()
    };
    OpsManagerClient::from_settings(&settings).expect("client")
}

#[tokio::test]
async fn one_challenge_serves_many_calls_and_a_stale_nonce_is_rechallenged() {
    let fake = FakeOpsManager::start(3).await;
    let client = client(&fake, PRIVATE_KEY);
    let groups = client.list_groups().await.expect("groups");
    assert_eq!(groups.len(), 3);
    for group in &groups {
        let config = client
            .automation_config(&GroupId::parse(&group.id).expect("id"))
            .await
            .expect("config");
        assert_eq!(config.bytes, fake.config(&group.id));
        assert_eq!(config.version, 1);
    }
    assert_eq!(
        fake.counter("challenge"),
        1,
        "the nonce is reused with increasing nc"
    );
    let calls = |operation: &str| {
        pincher::metrics::METRICS
            .plugin_calls
            .with_label_values(&["opsmanager", operation, "ok"])
            .get()
    };
    assert_eq!(
        calls("list_groups"),
        1,
        "every call is observed in the metrics"
    );
    assert_eq!(calls("get_automation_config"), 3);

    fake.expire_nonces();
    let id = GroupId::parse(&groups[0].id).expect("id");
    client
        .automation_config(&id)
        .await
        .expect("config after the nonce expired");
    assert_eq!(fake.counter("stale"), 1);
    assert_eq!(fake.counter("unauthorized"), 1);
    assert_eq!(fake.counter("replayed nc"), 0);
}

#[tokio::test]
async fn paging_follows_next_links_to_the_end() {
    let fake = FakeOpsManager::start(7).await;
    fake.set_max_items_per_page(3);
    let groups = client(&fake, PRIVATE_KEY)
        .list_groups()
        .await
        .expect("groups");
    assert_eq!(
        groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        fake.group_ids()
    );
    assert_eq!(fake.counter("GET /groups"), 3);
}

#[tokio::test]
async fn errors_name_the_cause_and_never_the_private_key() {
    let fake = FakeOpsManager::start(1).await;
    let group = GroupId::parse(&fake.group_ids()[0]).expect("id");
    let wrong = client(&fake, "not-the-private-key");
    let err = wrong.automation_config(&group).await.expect_err("401");
    assert!(
        matches!(err, OpsManagerError::Unauthorized { .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {wrong:?}");
    assert!(!shown.contains("not-the-private-key"), "{shown}");
    assert!(shown.contains("USER_UNAUTHORIZED"), "{shown}");

    let good = client(&fake, PRIVATE_KEY);
    let missing = GroupId::parse("5fffffffffffffffffffffff").expect("id");
    let err = good.automation_config(&missing).await.expect_err("404");
    assert!(
        err.to_string()
            .contains("no group 5fffffffffffffffffffffff")
            && err.to_string().contains("GROUP_NOT_FOUND"),
        "{err}"
    );

    fake.fail_group(group.as_str());
    let err = good.automation_config(&group).await.expect_err("500");
    assert!(
        matches!(err, OpsManagerError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(fake.counter("500"), 3, "two retries");
}

#[tokio::test]
async fn throttling_is_retried_and_a_slow_server_times_out() {
    let fake = FakeOpsManager::start(1).await;
    let group = GroupId::parse(&fake.group_ids()[0]).expect("id");
    let good = client(&fake, PRIVATE_KEY);
    fake.throttle_next(2);
    good.automation_config(&group)
        .await
        .expect("config after two 429s");
    assert_eq!(fake.counter("429"), 2);

    fake.set_latency(std::time::Duration::from_millis(1500));
    let settings = OpsManagerSettings {
        base_url: url::Url::parse(&fake.base_url).ok(),
        public_key: Some(PUBLIC_KEY.into()),
        private_key: Some(SecretString::from(PRIVATE_KEY)),
        timeout_secs: 1,
        max_retries: 0,
        ..OpsManagerSettings::default()
    };
    let impatient = OpsManagerClient::from_settings(&settings).expect("client");
    let err = impatient
        .automation_config(&group)
        .await
        .expect_err("timeout");
    assert!(matches!(err, OpsManagerError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot reach Ops Manager"),
        "{err}"
    );
}

/// Settings for the test keys at `base_url`, with no retries.
fn without_retries(base_url: &str) -> OpsManagerSettings {
    OpsManagerSettings {
        base_url: url::Url::parse(base_url).ok(),
        public_key: Some(PUBLIC_KEY.into()),
        private_key: Some(SecretString::from(PRIVATE_KEY)),
        max_retries: 0,
        ..OpsManagerSettings::default()
    }
}

#[tokio::test]
async fn an_unreachable_ops_manager_is_named_with_the_cause_once() {
    let settings = without_retries("http://127.0.0.1:1");
    let client = OpsManagerClient::from_settings(&settings).expect("client");
    let err = client.list_groups().await.expect_err("refused").to_string();
    assert!(
        err.starts_with("cannot reach Ops Manager for GET /groups"),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(err.matches("error sending request").count(), 1, "{err}");

    // A password in the base URL, user info or query, never shows in an error.
    let settings = OpsManagerSettings {
        base_url: url::Url::parse("http://ops:url-secret-1@127.0.0.1:1/?key=url-secret-2").ok(),
        ..settings
    };
    let client = OpsManagerClient::from_settings(&settings).expect("client");
    let err = client.list_groups().await.expect_err("refused").to_string();
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        !err.contains("url-secret-1") && !err.contains("url-secret-2"),
        "{err}"
    );
}

/// A server that challenges unauthenticated requests as Ops Manager does and sends every
/// authenticated one to `target` with a 307.
async fn redirector(target: String) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let target = target.clone();
        async move {
            if headers.contains_key(header::AUTHORIZATION) {
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        "Digest realm=\"MMS Public API\", domain=\"\", nonce=\"n0nce\", \
                         algorithm=MD5, qop=\"auth\", stale=false",
                    )],
                )
                    .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn digest_credentials_never_follow_a_redirect_to_another_server() {
    // Another port of the same host is another origin.
    let evil = crate::support::recording::RecordingServer::start().await;
    let evil_url = format!("{}/api/public/v1.0/groups", evil.url);

    let settings = without_retries(&redirector(evil_url).await);
    let client = OpsManagerClient::from_settings(&settings).expect("client");
    let err = client.list_groups().await.expect_err("refused").to_string();
    assert!(err.contains("redirect to another server"), "{err}");
    assert!(
        evil.requests().is_empty(),
        "the other server was called: {:?}",
        evil.requests()
    );
}
