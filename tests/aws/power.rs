//! Stopping and starting EC2 and RDS instances on moto: `pincher aws ec2|rds stop|start` and
//! `POST /actions/{name}/runs`, with the safety rules (an explicit selection, the protect tag,
//! max_targets, confirmation) and the run recorded.

use serde_json::{Value, json};

use crate::harness::{Pincher, json_with_code, pairs, results, stderr};

const REGION: &str = "us-east-1";

#[tokio::test]
async fn stopping_by_tag_stops_exactly_those_instances() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let dev = org
        .run_instances(m, REGION, 2, "t3.micro", &[("env", "dev"), ("team", "a")])
        .await;
    let other_team = org
        .run_instances(m, REGION, 1, "t3.micro", &[("env", "dev"), ("team", "b")])
        .await;
    let prod = org
        .run_instances(m, REGION, 2, "t3.micro", &[("env", "prod")])
        .await;

    let out = pincher.json(&[
        "aws", "ec2", "stop", "--tag", "env=dev", "--tag", "team=a", "--yes",
    ]);
    assert_eq!(
        results(&out),
        pairs(&[(&dev[0], "changed"), (&dev[1], "changed")]),
        "{out}"
    );
    assert!(out["run"].is_string(), "the run is recorded: {out}");
    let mut all = dev.clone();
    all.extend(other_team.iter().cloned());
    all.extend(prod.iter().cloned());
    let states = org.instance_states(m, REGION, &all).await;
    for id in &dev {
        assert_eq!(states[id], "stopped", "{id}");
    }
    for id in other_team.iter().chain(&prod) {
        assert_eq!(states[id], "running", "{id} must not be touched");
    }

    let again = pincher.json(&[
        "aws", "ec2", "start", "--tag", "env=dev", "--tag", "team=a", "--yes",
    ]);
    assert_eq!(
        results(&again),
        pairs(&[(&dev[0], "changed"), (&dev[1], "changed")])
    );
    let states = org.instance_states(m, REGION, &dev).await;
    assert!(states.values().all(|s| s == "running"), "{states:?}");
    let unchanged = pincher.json(&["aws", "ec2", "start", "--ids", &dev[0], "--yes"]);
    assert_eq!(results(&unchanged), pairs(&[(&dev[0], "unchanged")]));
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_lists_the_targets() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ids = org
        .run_instances(m, REGION, 2, "t3.micro", &[("env", "dev")])
        .await;

    let out = pincher.json(&["aws", "ec2", "stop", "--tag", "env=dev", "--dry-run"]);
    assert_eq!(
        results(&out),
        pairs(&[(&ids[0], "would_change"), (&ids[1], "would_change")]),
        "{out}"
    );
    assert_eq!(out["dry_run"], true);
    let states = org.instance_states(m, REGION, &ids).await;
    assert!(states.values().all(|s| s == "running"), "{states:?}");

    let table = pincher.ok(&["aws", "ec2", "stop", "--ids", &ids[0], "--dry-run"]);
    assert!(
        table.contains(&ids[0]) && table.contains("would_change"),
        "{table}"
    );
}

#[tokio::test]
async fn without_a_terminal_or_yes_a_change_is_refused() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ids = org
        .run_instances(m, REGION, 1, "t3.micro", &[("env", "dev")])
        .await;

    let output = pincher.run(&["aws", "ec2", "stop", "--tag", "env=dev"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    let states = org.instance_states(m, REGION, &ids).await;
    assert_eq!(states[&ids[0]], "running");

    let nothing_selected = pincher.run(&["aws", "ec2", "stop", "--yes"]);
    assert_eq!(nothing_selected.status.code(), Some(2));
    assert!(
        stderr(&nothing_selected).contains("empty selection"),
        "{}",
        stderr(&nothing_selected)
    );
    let states = org.instance_states(m, REGION, &ids).await;
    assert_eq!(states[&ids[0]], "running");
}

#[tokio::test]
async fn protected_instances_are_skipped() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let open = org
        .run_instances(m, REGION, 1, "t3.micro", &[("env", "dev")])
        .await;
    let protected = org
        .run_instances(
            m,
            REGION,
            1,
            "t3.micro",
            &[("env", "dev"), ("pincher:protect", "true")],
        )
        .await;

    let out = pincher.json(&["aws", "ec2", "stop", "--tag", "env=dev", "--yes"]);
    assert_eq!(
        results(&out),
        pairs(&[(&open[0], "changed"), (&protected[0], "skipped")])
    );
    let skipped = out["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["result"] == "skipped"))
        .expect("the skipped target");
    assert!(
        skipped["reason"]
            .as_str()
            .is_some_and(|r| r.contains("pincher:protect=true")),
        "{skipped}"
    );
    let states = org.instance_states(m, REGION, &protected).await;
    assert_eq!(states[&protected[0]], "running");
}

#[tokio::test]
async fn more_targets_than_max_targets_is_refused() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ids = org
        .run_instances(m, REGION, 3, "t3.micro", &[("env", "dev")])
        .await;

    let output = pincher.run(&[
        "aws",
        "ec2",
        "stop",
        "--tag",
        "env=dev",
        "--max-targets",
        "2",
        "--yes",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("max_targets"),
        "{}",
        stderr(&output)
    );
    let states = org.instance_states(m, REGION, &ids).await;
    assert!(states.values().all(|s| s == "running"), "{states:?}");

    let raised = pincher.json(&[
        "aws",
        "ec2",
        "stop",
        "--tag",
        "env=dev",
        "--max-targets",
        "3",
        "--yes",
    ]);
    assert_eq!(raised["summary"]["changed"], 3, "{raised}");
}

crate::both_backends! {
    async fn one_missing_id_gives_a_partial_run_with_the_others_done(backend) {
    let pincher = Pincher::on(backend, 0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ids = org.run_instances(m, REGION, 2, "t3.micro", &[]).await;
    let missing = "i-0123456789abcdef0".to_owned();

    let list = format!("{},{},{missing}", ids[0], ids[1]);
    let out = json_with_code(
        &pincher,
        &["aws", "ec2", "stop", "--ids", &list, "--yes"],
        3,
    );
    assert_eq!(
        results(&out),
        pairs(&[
            (&ids[0], "changed"),
            (&ids[1], "changed"),
            (&missing, "failed")
        ]),
        "{out}"
    );
    let states = org.instance_states(m, REGION, &ids).await;
    assert!(states.values().all(|s| s == "stopped"), "{states:?}");

    let runs: Value = serde_json::from_str(&pincher.ok(&[
        "runs",
        "list",
        "--action",
        "aws.ec2.stop",
        "--output",
        "json",
    ]))
    .expect("JSON");
    assert_eq!(runs[0]["outcome"], "partial", "{runs}");
    assert_eq!(runs[0]["trigger"], "cli");
    assert_eq!(runs[0]["actor"], "cli");
    assert_eq!(runs[0]["results"].as_array().map(Vec::len), Some(3));
}
}

#[tokio::test]
async fn rds_instances_stop_and_start_and_cluster_members_are_skipped() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let db = format!("orders-{}", &suffix[..8]);
    let cluster = format!("ledger-{}", &suffix[..8]);
    org.create_db_instance(
        m,
        REGION,
        &db,
        "postgres",
        "db.t3.micro",
        20,
        false,
        &[("env", "dev")],
    )
    .await;
    org.create_aurora_cluster(m, REGION, &cluster, &[("env", "dev")])
        .await;
    let member = format!("{cluster}-1");

    let out = pincher.json(&["aws", "rds", "stop", "--tag", "env=dev", "--yes"]);
    assert_eq!(
        results(&out),
        pairs(&[(&db, "changed"), (&member, "skipped")]),
        "{out}"
    );
    let targets = out["targets"].as_array().expect("targets");
    let stopped = targets.iter().find(|t| t["target"] == db.as_str());
    assert!(
        stopped.is_some_and(|t| t["reason"].as_str().is_some_and(|r| r.contains("7 days"))),
        "{out}"
    );
    let skipped = targets.iter().find(|t| t["target"] == member.as_str());
    assert!(
        skipped.is_some_and(|t| t["reason"].as_str().is_some_and(|r| r.contains(&cluster))),
        "{out}"
    );
    assert_eq!(org.db_status(m, REGION, &db).await, "stopped");
    assert_eq!(org.db_status(m, REGION, &member).await, "available");

    let dry = pincher.json(&["aws", "rds", "start", "--ids", &db, "--dry-run"]);
    assert_eq!(results(&dry), pairs(&[(&db, "would_change")]));
    assert_eq!(org.db_status(m, REGION, &db).await, "stopped");

    let started = pincher.json(&["aws", "rds", "start", "--ids", &db, "--yes"]);
    assert_eq!(results(&started), pairs(&[(&db, "changed")]));
    assert_eq!(org.db_status(m, REGION, &db).await, "available");
}

crate::both_backends! {
    async fn http_runs_need_a_write_token_and_are_listed(backend) {
        let pincher = Pincher::on(backend, 0).await;
        let (org, m) = (&pincher.org, &pincher.org.management);
        let ids = org.run_instances(m, REGION, 1, "t3.micro", &[("env", "dev")]).await;
        let server = pincher.serve_as("write");
        let url = format!("{}/actions/aws.ec2.stop/runs", server.base);
        let body = json!({"tags": {"env": "dev"}});

        let reader = crate::support::server::client(&pincher.token("read"));
        let refused = reader.post(&url).json(&body).send().await.expect("send");
        assert_eq!(refused.status().as_u16(), 403);
        assert_eq!(org.instance_states(m, REGION, &ids).await[&ids[0]], "running");

        let invalid = server.client.post(&url).json(&json!({"tags": {"env": 1}})).send().await.expect("send");
        assert_eq!(invalid.status().as_u16(), 422);
        let problem: Value = invalid.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "tags.env", "{problem}");
        let empty = server.client.post(&url).json(&json!({})).send().await.expect("send");
        assert_eq!(empty.status().as_u16(), 422);

        let response = server.client.post(&url).json(&body).send().await.expect("send");
        let status = response.status().as_u16();
        assert!(status == 201 || status == 202, "status {status}");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_owned();
        let mut run: Value = response.json().await.expect("run");
        for _ in 0..100 {
            if run["outcome"] != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            run = server.get(&location, None).await.json().await.expect("run");
        }
        assert_eq!(run["outcome"], "ok", "{run}");
        assert_eq!(run["trigger"], "http");
        assert!(run["actor"].as_str().is_some_and(|a| a.starts_with("aws-tests-write")), "{run}");
        assert_eq!(run["results"][0]["target"], ids[0].as_str());
        assert_eq!(run["results"][0]["result"], "changed");
        assert_eq!(org.instance_states(m, REGION, &ids).await[&ids[0]], "stopped");

        let listed: Value = server
            .get("/runs?action=aws.ec2.stop&trigger=http", None)
            .await
            .json()
            .await
            .expect("runs");
        assert_eq!(listed["items"][0]["id"], run["id"], "{listed}");
        let cli: Value = serde_json::from_str(&pincher.ok(&["runs", "list", "--output", "json"]))
            .expect("JSON");
        assert_eq!(cli[0]["id"], run["id"]);
        let shown = pincher.ok(&["runs", "show", run["id"].as_str().expect("id")]);
        assert!(shown.contains(&ids[0]) && shown.contains("changed"), "{shown}");
    }
}
