//! `pincher chef …` run as a user would, against goiardi.

use std::process::{Command, Output, Stdio};

use pincher::plugins::chef::SignVersion;
use pincher::plugins::chef::nodes::{create_node, delete_node, list_nodes};
use serde_json::{Value, json};

use crate::search::{create_batch, delete_batch, wait_until_indexed};
use crate::support::chef::{ChefPeer, eventually, unique};

/// `pincher ARGS…` with only the given settings in its environment, in a temp folder.
fn pincher(settings: &[(String, String)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pincher"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PINCHER_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .args(args)
        .output()
        .expect("run pincher")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs against the peer, asserts success and returns stdout.
fn ok(peer: &ChefPeer, args: &[&str]) -> String {
    let output = pincher(&peer.settings_env(), args);
    assert!(
        output.status.success(),
        "pincher {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

fn json_of(peer: &ChefPeer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    serde_json::from_str(&ok(peer, &args)).expect("JSON output")
}

fn with(peer: &ChefPeer, key: &str, value: &str) -> Vec<(String, String)> {
    let mut settings = peer.settings_env();
    settings.retain(|(k, _)| k != key);
    settings.push((key.to_owned(), value.to_owned()));
    settings
}

#[test]
fn status_is_authenticated_with_every_protocol() {
    let peer = ChefPeer::from_env();
    for version in ["1.3", "1.1", "1.0"] {
        let output = pincher(
            &with(&peer, "PINCHER_CHEF__SIGN_VERSION", version),
            &["chef", "status", "--output", "json"],
        );
        assert!(output.status.success(), "{version}: {}", stderr(&output));
        let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
        let row = &report["rows"][0];
        assert_eq!(row["sign_version"], version);
        assert_eq!(row["reachable"], true);
        assert_eq!(row["authenticated"], true);
        assert!(
            row["server_info"]
                .as_str()
                .is_some_and(|s| s.contains("goiardi")),
            "{row}"
        );
    }
}

#[test]
fn status_with_a_wrong_key_fails_and_says_why() {
    let peer = ChefPeer::from_env();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chef/unknown_key.pem");
    let output = pincher(
        &with(
            &peer,
            "PINCHER_CHEF__CLIENT_KEY",
            &key.display().to_string(),
        ),
        &["chef", "status", "--output", "json"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains("chef.client_key"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(report["rows"][0]["reachable"], true);
    assert_eq!(report["rows"][0]["authenticated"], false);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(1));
}

#[test]
fn status_of_an_unreachable_server_fails() {
    let peer = ChefPeer::from_env();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let output = pincher(
        &with(
            &peer,
            "PINCHER_CHEF__SERVER_URL",
            &format!("http://127.0.0.1:{port}"),
        ),
        &["chef", "status", "--output", "json"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot reach the Chef server"));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(report["rows"][0]["reachable"], false);
}

#[test]
fn missing_settings_are_named() {
    let output = pincher(&[], &["chef", "nodes", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("chef.server_url"),
        "{}",
        stderr(&output)
    );

    let peer = ChefPeer::from_env();
    let mut settings = peer.settings_env();
    settings.retain(|(k, _)| k != "PINCHER_CHEF__CLIENT_KEY");
    let output = pincher(&settings, &["chef", "status"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("chef.client_key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_malformed_attribute_is_a_usage_error() {
    let peer = ChefPeer::from_env();
    let output = pincher(
        &peer.settings_env(),
        &["chef", "search", "node", "*:*", "--attribute", "ip="],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[tokio::test]
async fn nodes_list_and_show_in_every_format() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let environment = unique("cli");
    client
        .post(
            "create_environment",
            &["environments"],
            &[],
            &json!({"name": environment, "json_class": "Chef::Environment",
                    "chef_type": "environment", "description": "",
                    "default_attributes": {}, "override_attributes": {}, "cookbook_versions": {}}),
        )
        .await
        .expect("create the environment");
    let names = [unique("app"), unique("cache")];
    for (i, name) in names.iter().enumerate() {
        create_node(
            &client,
            &json!({
                "name": name, "chef_type": "node", "json_class": "Chef::Node",
                "chef_environment": environment, "run_list": ["role[app]"],
                "default": {"app": {"port": 80}}, "normal": {}, "override": {"app": {"port": 8080}},
                "automatic": {"platform": "ubuntu", "platform_version": "24.04",
                              "ipaddress": format!("10.1.0.{i}"), "ohai_time": 1_700_000_000,
                              "ec2": {"instance_id": format!("i-cli{i}")}}
            }),
        )
        .await
        .expect("create a node");
    }

    let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
    expected.sort_unstable();
    eventually("both nodes to be indexed", || async {
        let nodes = list_nodes(&client, Some(&environment))
            .await
            .expect("list nodes");
        (nodes.len() >= expected.len()).then_some(())
    })
    .await;
    let report = json_of(
        &peer,
        &["chef", "nodes", "list", "--environment", &environment],
    );
    assert_eq!(report["kind"], "chef.nodes");
    let listed: Vec<&str> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(report["summary"]["nodes"], 2);
    assert_eq!(report["rows"][0]["platform"], "ubuntu 24.04");
    assert_eq!(report["rows"][0]["last_run"], "2023-11-14T22:13:20Z");

    let csv = ok(
        &peer,
        &[
            "chef",
            "nodes",
            "list",
            "--environment",
            &environment,
            "--output",
            "csv",
        ],
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("name,environment,platform,fqdn,ipaddress,instance_id,last_run")
    );
    assert_eq!(lines.count(), 2);
    for format in ["table", "markdown", "html"] {
        let text = ok(
            &peer,
            &[
                "chef",
                "nodes",
                "list",
                "--environment",
                &environment,
                "--output",
                format,
            ],
        );
        assert!(
            names.iter().all(|n| text.contains(n.as_str())),
            "{format}: {text}"
        );
    }

    let shown = json_of(
        &peer,
        &[
            "chef",
            "nodes",
            "show",
            &names[0],
            "--attribute",
            "app.port",
            "--attribute",
            "ec2.instance_id",
            "--attribute",
            "no.such.thing",
        ],
    );
    let rows = shown["rows"].as_array().expect("rows");
    assert_eq!(rows[0], json!({"attribute": "app.port", "value": 8080}));
    assert_eq!(rows[1]["value"], "i-cli0");
    assert_eq!(rows[2]["value"], Value::Null);
    assert_eq!(shown["summary"]["missing"], "no.such.thing");

    let default_view = json_of(&peer, &["chef", "nodes", "show", &names[1]]);
    assert!(
        default_view["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["attribute"] == "chef_environment" && r["value"] == environment.as_str())
    );

    let missing = pincher(
        &peer.settings_env(),
        &["chef", "nodes", "show", "no-such-node"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );

    for name in &names {
        delete_node(&client, name).await.expect("delete a node");
    }
    client
        .delete("delete_environment", &["environments", &environment])
        .await
        .expect("delete the environment");
}

#[tokio::test]
async fn search_prints_every_row_past_the_first_page() {
    let peer = ChefPeer::from_env();
    let client = peer.client(SignVersion::V1_3);
    let batch = unique("clibatch").replace('-', "_");
    let prefix = unique("clipage");
    let count = 1_030;
    create_batch(&client, &prefix, &batch, count).await;

    let query = format!("pincher_batch:{batch}");
    wait_until_indexed(&client, &query, count).await;
    let report = json_of(
        &peer,
        &[
            "chef",
            "search",
            "node",
            &query,
            "--attribute",
            "instance=ec2.instance_id",
            "--attribute",
            "seq",
        ],
    );
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), count);
    assert_eq!(report["summary"]["rows"], count);
    let mut seqs: Vec<u64> = rows
        .iter()
        .map(|r| r["data"]["seq"].as_u64().expect("seq"))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), count, "every node exactly once");
    let first = rows.iter().find(|r| r["data"]["seq"] == 0).expect("row 0");
    assert_eq!(first["data"]["instance"], "i-00000000000000000");
    assert_eq!(first["name"], format!("{prefix}-00000"));

    let csv = ok(
        &peer,
        &["chef", "search", "node", &query, "--output", "csv"],
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.records().count(), count);

    delete_batch(&client, &prefix, count).await;
}

#[test]
fn the_health_check_includes_chef_and_warns_when_it_fails() {
    let peer = ChefPeer::from_env();
    let health = json_of(&peer, &["status"]);
    assert_eq!(health["status"], "pass", "{health}");
    assert_eq!(
        health["checks"]["chef:responseTime"][0]["status"], "pass",
        "{health}"
    );

    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chef/unknown_key.pem");
    let output = pincher(
        &with(
            &peer,
            "PINCHER_CHEF__CLIENT_KEY",
            &key.display().to_string(),
        ),
        &["status", "--output", "json"],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "an optional dependency only warns"
    );
    let health: Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(health["status"], "warn", "{health}");
    let check = &health["checks"]["chef:responseTime"][0];
    assert_eq!(check["status"], "warn");
    assert!(
        check["output"]
            .as_str()
            .is_some_and(|o| o.contains("401") || o.to_lowercase().contains("auth")),
        "{check}"
    );
    let pem = std::fs::read_to_string(&key).expect("key");
    let body = pem.lines().nth(1).expect("a key line");
    assert!(
        !stdout(&output).contains(body),
        "no key material in the health output"
    );
    assert_eq!(
        health["checks"]["database:responseTime"][0]["status"],
        "pass"
    );
}
