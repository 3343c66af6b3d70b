//! `pincher chef reconcile` and `GET /reports/chef/reconcile` against goiardi and moto
//! together: exactly the expected orphans.

use pincher::plugins::chef::SignVersion;
use pincher::plugins::chef::nodes::{create_node, list_nodes};
use serde_json::{Value, json};

use crate::support::chef::{ChefPeer, eventually, unique};
use crate::support::moto::MotoOrg;
use crate::support::server::{ServerProcess, create_token, pincher_command};

fn node(name: &str, environment: &str, account: &str, instance_id: &str) -> Value {
    json!({
        "name": name,
        "chef_type": "node",
        "json_class": "Chef::Node",
        "chef_environment": environment,
        "run_list": [],
        "normal": {}, "default": {}, "override": {},
        "automatic": {
            "ohai_time": 1_790_000_000.0,
            "ec2": {
                "instance_id": instance_id,
                "placement_availability_zone": "us-east-1a",
                "account_id": account
            }
        }
    })
}

/// `(finding, instance_id, node)` of every row, sorted.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["finding"].as_str().unwrap_or_default().to_owned(),
                r["instance_id"].as_str().unwrap_or_default().to_owned(),
                r["node"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_exactly_the_orphans_from_the_cli_and_over_http() {
    let chef = ChefPeer::from_env();
    let org = MotoOrg::create(0).await;
    let account = org.management.account.clone();
    let ids = org
        .run_instances(&org.management, "us-east-1", 3, "t3.micro", &[])
        .await;
    let (managed, orphan, stopped) = (&ids[0], &ids[1], &ids[2]);
    org.stop_instances(&org.management, "us-east-1", std::slice::from_ref(stopped))
        .await;

    let environment = unique("reconcile").replace('-', "_");
    let client = chef.client(SignVersion::V1_3);
    let web = unique("web");
    let batch = unique("batch");
    let ghost = unique("ghost");
    for (name, instance) in [
        (&web, managed.as_str()),
        (&batch, stopped.as_str()),
        (&ghost, "i-00000000000dead00"),
    ] {
        create_node(&client, &node(name, &environment, &account, instance))
            .await
            .expect("create a node");
    }
    eventually("the nodes to be searchable", || async {
        let nodes = list_nodes(&client, Some(&environment)).await.ok()?;
        (nodes.len() == 3).then_some(())
    })
    .await;

    let expected = vec![
        (
            "instance_without_node".to_owned(),
            orphan.clone(),
            String::new(),
        ),
        (
            "node_instance_gone".to_owned(),
            "i-00000000000dead00".to_owned(),
            ghost.clone(),
        ),
        (
            "node_instance_stopped".to_owned(),
            stopped.clone(),
            batch.clone(),
        ),
    ];
    let mut expected = expected;
    expected.sort();

    let mut env: Vec<(String, String)> = chef.settings_env();
    env.extend(org.env());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = pincher_command(dir.path())
        .envs(env_refs.iter().copied())
        .args([
            "chef",
            "reconcile",
            "--environment",
            &environment,
            "--output",
            "json",
        ])
        .output()
        .expect("run pincher");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["kind"], "chef.reconcile", "{report}");
    assert_eq!(findings(&report), expected, "{report:#}");
    let orphan_row = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["finding"] == "instance_without_node")
        .expect("the orphan row");
    assert_eq!(orphan_row["account"], account.as_str());
    assert_eq!(orphan_row["region"], "us-east-1");

    let csv = pincher_command(dir.path())
        .envs(env_refs.iter().copied())
        .args([
            "chef",
            "reconcile",
            "--environment",
            &environment,
            "--output",
            "csv",
        ])
        .output()
        .expect("run pincher");
    let text = String::from_utf8(csv.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.starts_with("finding,account,region,instance_id"),
        "{text}"
    );

    let token = create_token(dir.path(), &env_refs);
    let server = ServerProcess::start(dir.path(), &env_refs);
    let response = crate::support::server::client(&token)
        .get(format!(
            "{}/reports/chef/reconcile?environment={environment}",
            server.url()
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["pincher-report-completeness"],
        "complete"
    );
    let over_http: Value = response.json().await.expect("json");
    assert_eq!(findings(&over_http), expected);
}
