//! `/actions` and `/runs`: the registry of actions, starting runs by name, and the record of
//! every run, on both backends. The actions run here need no peer (Ops Manager is left
//! unconfigured, so its backup run fails and is recorded as failed).

use pincher::domain::token::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, assert_problem, client_with_token, problem_fields, spawn_app};

const BACKUP_RUNS: &str = "/actions/opsmanager.backup/runs";

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.request(Method::POST, path)
        .json(body)
        .send()
        .await
        .expect("send")
}

both_backends! {
    async fn every_action_is_listed_with_its_params_schema(backend) {
        let app = spawn_app(backend).await;
        let response = app.get("/actions").await;
        assert_eq!(response.status().as_u16(), 200);
        let actions: Value = response.json().await.expect("json");
        let names: Vec<&str> = actions.as_array().expect("array").iter().filter_map(|a| a["name"].as_str()).collect();
        assert_eq!(names.len(), 16, "{names:?}");
        for name in ["aws.savings.report", "aws.ec2.release-address", "aws.ebs.delete-volume", "aws.ec2.stop", "aws.rds.start", "opsmanager.backup", "chef.reconcile", "services.report", "aws.ce.report"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let stop = actions.as_array().and_then(|a| a.iter().find(|a| a["name"] == "aws.ec2.stop")).expect("aws.ec2.stop");
        assert_eq!(stop["changes"], true);
        let schema = &stop["params_schema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        for property in ["ids", "tags", "service", "regions", "all_accounts", "max_targets"] {
            assert!(schema["properties"][property].is_object(), "{property}: {schema}");
        }
        let report = actions.as_array().and_then(|a| a.iter().find(|a| a["name"] == "aws.ec2.report")).expect("report");
        assert_eq!(report["changes"], false);
    }

    async fn a_run_is_recorded_and_answered_with_its_location(backend) {
        let app = spawn_app(backend).await;
        let response = post(&app, BACKUP_RUNS, &json!({})).await;
        assert_eq!(response.status().as_u16(), 201);
        let location = response.headers()["location"].to_str().expect("text").to_owned();
        let run: Value = response.json().await.expect("json");
        assert_eq!(location, format!("/runs/{}", run["id"].as_str().expect("id")));
        assert_eq!(run["action"], "opsmanager.backup");
        assert_eq!(run["outcome"], "failed", "{run}");
        assert!(run["error"].as_str().is_some_and(|e| e.contains("not configured")), "{run}");
        assert_eq!(run["trigger"], "http");
        assert_eq!(run["actor"], "test-admin");
        assert_eq!(run["dry_run"], false);
        assert!(run["finished_at"].is_string());

        let shown: Value = app.get(&location).await.json().await.expect("json");
        assert_eq!(shown, run);

        let dry = post(&app, &format!("{BACKUP_RUNS}?dry_run=true"), &json!({"groups": ["5f1b2c3d4e5f6a7b8c9d0e1f"]})).await;
        assert_eq!(dry.status().as_u16(), 201);
        let dry: Value = dry.json().await.expect("json");
        assert_eq!(dry["dry_run"], true);
        assert_eq!(dry["params"], json!({"groups": ["5f1b2c3d4e5f6a7b8c9d0e1f"]}));

        let metrics = app.get("/metrics").await.text().await.expect("text");
        assert!(
            metrics.lines().any(|l| l.starts_with("pincher_action_runs_total{action=\"opsmanager.backup\",outcome=\"failed\"}")),
            "{metrics}"
        );
        assert!(metrics.contains("pincher_action_run_duration_seconds_bucket{action=\"opsmanager.backup\""));
    }

    async fn bad_runs_are_refused_before_anything_is_recorded(backend) {
        let app = spawn_app(backend).await;
        assert_problem(post(&app, "/actions/no.such.action/runs", &json!({})).await, 404).await;
        let problem = assert_problem(post(&app, BACKUP_RUNS, &json!({"groups": ["../etc"], "bogus": 1})).await, 422).await;
        assert_eq!(problem_fields(&problem), ["bogus"]);
        let problem = assert_problem(post(&app, BACKUP_RUNS, &json!({"groups": ["../etc"]})).await, 422).await;
        assert_eq!(problem_fields(&problem), ["groups[0]"]);
        let problem = assert_problem(post(&app, BACKUP_RUNS, &json!({"all_groups": "yes"})).await, 422).await;
        assert_eq!(problem_fields(&problem), ["all_groups"]);
        assert_problem(post(&app, &format!("{BACKUP_RUNS}?group=x"), &json!({})).await, 400).await;
        assert_problem(post(&app, &format!("{BACKUP_RUNS}?dry_run=maybe"), &json!({})).await, 400).await;
        let not_json = app.request(Method::POST, BACKUP_RUNS).header("content-type", "text/plain").body("x").send().await.expect("send");
        assert_problem(not_json, 415).await;

        let reader = client_with_token(Some(&app.create_token("reader", Scope::Read).await));
        let refused = reader.post(format!("{}{BACKUP_RUNS}", app.address)).json(&json!({})).send().await.expect("send");
        assert_problem(refused, 403).await;

        let runs: Value = app.get("/runs").await.json().await.expect("json");
        assert_eq!(runs["items"], json!([]), "nothing was recorded: {runs}");
    }

    async fn runs_are_listed_newest_first_filtered_and_paged(backend) {
        let app = spawn_app(backend).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let run: Value = post(&app, BACKUP_RUNS, &json!({})).await.json().await.expect("json");
            ids.push(run["id"].as_str().expect("id").to_owned());
        }
        let page: Value = app.get("/runs?limit=2").await.json().await.expect("json");
        let first: Vec<&str> = page["items"].as_array().expect("items").iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(first, [ids[2].as_str(), ids[1].as_str()]);
        let next = page["next"].as_str().expect("a next page");
        let rest: Value = app.get(next).await.json().await.expect("json");
        assert_eq!(rest["items"][0]["id"], ids[0].as_str());
        assert!(rest["next"].is_null());

        for (query, expected) in [
            ("action=opsmanager.backup", 3),
            ("outcome=failed", 3),
            ("outcome=ok", 0),
            ("trigger=http", 3),
            ("trigger=cli", 0),
        ] {
            let listed: Value = app.get(&format!("/runs?{query}")).await.json().await.expect("json");
            assert_eq!(listed["items"].as_array().map(Vec::len), Some(expected), "{query}");
        }
        for bad in ["outcome=bogus", "trigger=cron", "action=nope", "limit=0", "cursor=zzz", "color=red"] {
            let response = app.get(&format!("/runs?{bad}")).await;
            assert_problem(response, 400).await;
        }
        assert_problem(app.get("/runs/not-a-uuid").await, 404).await;
        assert_problem(app.get("/runs/0190c3a6-0000-7000-8000-000000000000").await, 404).await;
    }
}
