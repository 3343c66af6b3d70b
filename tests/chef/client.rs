//! The signed client against goiardi: every protocol version, and what a wrong key gets.

use pincher::plugins::chef::nodes::{create_node, delete_node, get_node, list_nodes};
use pincher::plugins::chef::{ChefError, ClientKey, SignVersion};
use secrecy::SecretString;
use serde_json::json;

use crate::support::chef::{ChefPeer, eventually, unique};

/// A valid RSA key that goiardi has never seen (mixlib-authentication's spec key).
pub const UNKNOWN_KEY: &str = include_str!("unknown_key.pem");

fn test_node(name: &str, environment: &str, instance_id: &str) -> serde_json::Value {
    json!({
        "name": name,
        "chef_type": "node",
        "json_class": "Chef::Node",
        "chef_environment": environment,
        "run_list": ["recipe[base]"],
        "normal": {"team": "sre"},
        "default": {},
        "override": {},
        "automatic": {
            "platform": "debian", "platform_version": "12", "fqdn": format!("{name}.example"),
            "ipaddress": "10.0.0.7", "ohai_time": 1_700_000_000.5,
            "ec2": {"instance_id": instance_id, "placement_availability_zone": "eu-west-1a"}
        }
    })
}

async fn create_and_read_back(version: SignVersion) {
    let peer = ChefPeer::from_env();
    let client = peer.client(version);
    let name = unique(&format!("node-v{}", version.as_str().replace('.', "")));
    create_node(
        &client,
        &test_node(&name, "_default", "i-0123456789abcdef0"),
    )
    .await
    .unwrap_or_else(|e| panic!("create {name} with protocol {version}: {e}"));

    let node = get_node(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("read {name} with protocol {version}: {e}"));
    assert_eq!(node["name"], name.as_str());
    assert_eq!(
        node["automatic"]["ec2"]["instance_id"],
        "i-0123456789abcdef0"
    );
    assert_eq!(node["normal"]["team"], "sre");

    delete_node(&client, &name).await.expect("delete the node");
    let gone = get_node(&client, &name).await;
    assert!(matches!(gone, Err(ChefError::NotFound { .. })), "{gone:?}");
}

#[tokio::test]
async fn protocol_1_3_creates_and_reads_nodes() {
    create_and_read_back(SignVersion::V1_3).await;
}

#[tokio::test]
async fn protocol_1_1_creates_and_reads_nodes() {
    create_and_read_back(SignVersion::V1_1).await;
}

#[tokio::test]
async fn protocol_1_0_creates_and_reads_nodes() {
    create_and_read_back(SignVersion::V1_0).await;
}

#[tokio::test]
async fn the_check_is_authenticated_and_counted() {
    let peer = ChefPeer::from_env();
    let checks = |outcome| {
        pincher::metrics::METRICS
            .plugin_calls
            .with_label_values(&["chef", "check", outcome])
            .get()
    };
    let before = checks("ok");
    for version in [SignVersion::V1_3, SignVersion::V1_1, SignVersion::V1_0] {
        let check = peer
            .client(version)
            .check()
            .await
            .unwrap_or_else(|e| panic!("check with protocol {version}: {e}"));
        assert!(check.latency.as_secs() < 30);
    }
    assert_eq!(checks("ok"), before + 3);
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_authentication_error() {
    let peer = ChefPeer::from_env();
    let key = ClientKey::from_pem(&SecretString::from(UNKNOWN_KEY), "unknown_key.pem")
        .expect("parse the test key");
    for version in [SignVersion::V1_3, SignVersion::V1_1, SignVersion::V1_0] {
        let client = peer.client_with(version, &peer.client, key.clone());
        let err = client
            .check()
            .await
            .expect_err("a wrong key must be refused");
        assert!(
            matches!(err, ChefError::Authentication { .. }),
            "protocol {version}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("401"), "{message}");
        assert!(message.contains("chef.client_key"), "{message}");
        assert!(message.contains(&format!("`{}`", peer.client)), "{message}");
        assert!(!message.contains("PRIVATE KEY"), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_client_is_an_authentication_error() {
    let peer = ChefPeer::from_env();
    let key = ClientKey::read(&peer.key).expect("read the admin key");
    let client = peer.client_with(SignVersion::V1_3, "nobody-here", key);
    let err = client
        .check()
        .await
        .expect_err("an unknown client must be refused");
    assert!(matches!(err, ChefError::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains("`nobody-here`"), "{err}");
}

#[tokio::test]
async fn nodes_are_listed_by_environment_with_their_ec2_facts() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let environment = unique("env");
    client
        .post(
            "create_environment",
            &["environments"],
            &[],
            &json!({"name": environment, "json_class": "Chef::Environment",
                    "chef_type": "environment", "description": "pincher test",
                    "default_attributes": {}, "override_attributes": {}, "cookbook_versions": {}}),
        )
        .await
        .expect("create the environment");
    let names = [unique("web"), unique("db")];
    for (i, name) in names.iter().enumerate() {
        create_node(
            &client,
            &test_node(name, &environment, &format!("i-{i:017}")),
        )
        .await
        .expect("create a node");
    }

    let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
    expected.sort_unstable();
    let nodes = eventually("both nodes to be indexed", || async {
        let nodes = list_nodes(&client, Some(&environment))
            .await
            .expect("list the environment's nodes");
        (nodes.len() >= expected.len()).then_some(nodes)
    })
    .await;
    assert_eq!(
        nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        expected
    );
    let web = nodes
        .iter()
        .find(|n| n.name == names[0])
        .expect("the web node");
    assert_eq!(web.environment, environment);
    assert_eq!(web.instance_id.as_deref(), Some("i-00000000000000000"));
    assert_eq!(web.region.as_deref(), Some("eu-west-1"));
    assert_eq!(web.platform.as_deref(), Some("debian"));
    assert_eq!(web.last_run().as_deref(), Some("2023-11-14T22:13:20Z"));

    let everything = list_nodes(&client, None).await.expect("list all nodes");
    assert!(
        names
            .iter()
            .all(|n| everything.iter().any(|e| &e.name == n))
    );

    for name in &names {
        delete_node(&client, name).await.expect("delete a node");
    }
    client
        .delete("delete_environment", &["environments", &environment])
        .await
        .expect("delete the environment");
}

/// Sends `GET path` with headers signed for `signed_path` at `timestamp`.
async fn raw_get(peer: &ChefPeer, path: &str, signed_path: &str, timestamp: &str) -> u16 {
    use pincher::plugins::chef::client::{SigningInput, sign_request};
    let key = ClientKey::read(&peer.key).expect("read the admin key");
    let headers = sign_request(
        &key,
        SignVersion::V1_3,
        &SigningInput {
            method: "GET",
            path: signed_path,
            body: b"",
            timestamp,
            user_id: &peer.client,
            server_api_version: "1",
        },
    )
    .expect("sign");
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", peer.url))
        .header("Accept", "application/json")
        .header("X-Chef-Version", "18.0.0")
        .header("X-Ops-Server-API-Version", "1");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.expect("send").status().as_u16()
}

fn timestamp(offset: time::Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + offset;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[tokio::test]
async fn the_server_checks_what_the_signature_covers() {
    let peer = ChefPeer::from_env();
    let now = timestamp(time::Duration::ZERO);
    let path = "/environments/_default";
    assert_eq!(
        raw_get(&peer, path, path, &now).await,
        200,
        "a correct signature"
    );
    assert_eq!(
        raw_get(&peer, "/nodes", path, &now).await,
        401,
        "a signature for another path"
    );
    let old = timestamp(time::Duration::hours(-1));
    assert_eq!(
        raw_get(&peer, path, path, &old).await,
        401,
        "a signature an hour old"
    );
}

#[tokio::test]
async fn a_pkcs8_key_signs_as_well_as_its_pkcs1_form() {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::EncodePrivateKey as _;
    let peer = ChefPeer::from_env();
    let pkcs1 = std::fs::read_to_string(&peer.key).expect("read the admin key");
    assert!(
        pkcs1.contains("BEGIN RSA PRIVATE KEY"),
        "goiardi writes PKCS#1"
    );
    let pkcs8 = rsa::RsaPrivateKey::from_pkcs1_pem(&pkcs1)
        .expect("parse PKCS#1")
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .expect("encode PKCS#8");
    let key = ClientKey::from_pem(&SecretString::from(pkcs8.to_string()), "admin.p8.pem")
        .expect("parse PKCS#8");
    for version in [SignVersion::V1_3, SignVersion::V1_0] {
        peer.client_with(version, &peer.client, key.clone())
            .check()
            .await
            .unwrap_or_else(|e| panic!("protocol {version} with a PKCS#8 key: {e}"));
    }
}

/// Signed headers (`X-Ops-Authorization-*`) are not `Authorization`, so an HTTP client's own
/// redirect hygiene does not strip them: pincher must not follow a redirect to another server.
#[tokio::test]
async fn signed_requests_never_follow_a_redirect_to_another_server() {
    let evil = crate::support::recording::RecordingServer::start().await;
    let evil_url = format!("{}/nodes", evil.url);
    let redirect = axum::Router::new().fallback(move || {
        let target = evil_url.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, target)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, redirect).await });

    let key = ClientKey::from_pem(&SecretString::from(UNKNOWN_KEY), "unknown_key.pem")
        .expect("parse the test key");
    let client = pincher::plugins::chef::ChefClient::new(
        url::Url::parse(&server).expect("url"),
        "pincher".into(),
        key,
        SignVersion::V1_3,
        std::time::Duration::from_secs(5),
    )
    .expect("client");
    let err = list_nodes(&client, None)
        .await
        .expect_err("refused")
        .to_string();
    assert!(err.contains("redirect to another server"), "{err}");
    assert!(
        evil.requests().is_empty(),
        "the other server got the signed headers: {:?}",
        evil.requests()
    );
}
