//! `/rules` over HTTP on both backends: checked writes, ETag and If-Match, merge patches,
//! paging, runs started by request; and the scheduler's slot rules driven tick by tick.

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::both_backends;
use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app};

fn rule(name: &str) -> Value {
    json!({
        "name": name,
        "description": "dev instances off in the evening",
        "schedule": "0 19 * * MON-FRI",
        "timezone": "Europe/Berlin",
        "steps": [
            {"action": "aws.ec2.stop", "params": {"tags": {"env": "dev"}}},
            {"action": "aws.rds.stop", "params": {"tags": {"env": "dev"}, "max_targets": 5}}
        ]
    })
}

async fn send(app: &TestApp, method: Method, path: &str, body: &Value) -> reqwest::Response {
    app.request(method, path)
        .json(body)
        .send()
        .await
        .expect("send")
}

both_backends! {
    async fn rules_are_checked_on_write_naming_the_step_and_field(backend) {
        let app = spawn_app(backend).await;
        let mut bad = rule("bad");
        bad["steps"][1]["params"]["tags"] = json!("env=dev");
        let problem = assert_problem(send(&app, Method::POST, "/rules", &bad).await, 422).await;
        assert_eq!(problem_fields(&problem), ["steps[1].params.tags"], "{problem}");

        for (field, value, expected) in [
            ("schedule", json!("61 * * * *"), "schedule"),
            ("schedule", json!("* * * *"), "schedule"),
            ("schedule", json!("0 0 30 2 *"), "schedule"),
            ("timezone", json!("Mars/Olympus"), "timezone"),
            ("on_failure", json!("retry"), "on_failure"),
            ("name", json!("Not A Slug"), "name"),
        ] {
            let mut doc = rule("bad");
            doc[field] = value;
            let problem = assert_problem(send(&app, Method::POST, "/rules", &doc).await, 422).await;
            assert_eq!(problem_fields(&problem), [expected], "{field}: {problem}");
        }
        let mut unknown = rule("bad");
        unknown["steps"][0]["action"] = json!("aws.ec2.explode");
        let problem = assert_problem(send(&app, Method::POST, "/rules", &unknown).await, 422).await;
        assert_eq!(problem_fields(&problem), ["steps[0].action"]);
        let mut empty = rule("bad");
        empty["steps"][0]["params"] = json!({});
        let problem = assert_problem(send(&app, Method::POST, "/rules", &empty).await, 422).await;
        assert_eq!(problem_fields(&problem), ["steps[0].params.ids"], "an empty selection: {problem}");

        let listed: Value = app.get("/rules").await.json().await.expect("json");
        assert_eq!(listed["items"], json!([]), "nothing was stored");
    }

    async fn rules_are_created_read_patched_and_deleted_like_services(backend) {
        let app = spawn_app(backend).await;
        let created = send(&app, Method::POST, "/rules", &rule("office-hours")).await;
        assert_eq!(created.status().as_u16(), 201);
        let location = created.headers()["location"].to_str().expect("text").to_owned();
        let etag = created.headers()["etag"].to_str().expect("text").to_owned();
        let body: Value = created.json().await.expect("json");
        assert_eq!(body["on_failure"], "stop");
        assert_eq!(body["enabled"], true);
        assert_eq!(location, format!("/rules/{}", body["id"].as_str().expect("id")));
        assert_problem(send(&app, Method::POST, "/rules", &rule("office-hours")).await, 409).await;

        let by_name = app.get("/rules/office-hours").await;
        assert_eq!(by_name.headers()["etag"], etag.as_str());
        let fetched: Value = by_name.json().await.expect("json");
        assert_eq!(fetched, body);

        let stale = app.request(Method::PATCH, "/rules/office-hours")
            .header("if-match", "\"stale\"")
            .header("content-type", "application/merge-patch+json")
            .body(json!({"enabled": false}).to_string())
            .send().await.expect("send");
        assert_problem(stale, 412).await;
        let patched = app.request(Method::PATCH, &location)
            .header("if-match", &etag)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"enabled": false, "description": null}).to_string())
            .send().await.expect("send");
        assert_eq!(patched.status().as_u16(), 200);
        let patched: Value = patched.json().await.expect("json");
        assert_eq!(patched["enabled"], false);
        assert_eq!(patched["description"], "");
        assert_eq!(patched["steps"], body["steps"], "untouched fields stay");

        let mut replaced = fetched.clone();
        replaced["schedule"] = json!("@hourly");
        let put = send(&app, Method::PUT, "/rules/office-hours", &replaced).await;
        assert_eq!(put.status().as_u16(), 200, "a fetched rule can be sent back");
        let put: Value = put.json().await.expect("json");
        assert_eq!(put["schedule"], "@hourly");
        assert_eq!(put["enabled"], true, "PUT replaces every field");

        for i in 0..3 {
            assert_eq!(send(&app, Method::POST, "/rules", &rule(&format!("r{i}"))).await.status().as_u16(), 201);
        }
        let page: Value = app.get("/rules?limit=2").await.json().await.expect("json");
        let names: Vec<&str> = page["items"].as_array().expect("items").iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["office-hours", "r0"]);
        let rest: Value = app.get(page["next"].as_str().expect("next")).await.json().await.expect("json");
        let names: Vec<&str> = rest["items"].as_array().expect("items").iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["r1", "r2"]);
        assert_problem(app.get("/rules?limit=0").await, 400).await;

        let deleted = app.request(Method::DELETE, "/rules/r0").send().await.expect("send");
        assert_eq!(deleted.status().as_u16(), 204);
        assert_problem(app.get("/rules/r0").await, 404).await;
        assert_problem(app.get("/rules/Not%20A%20Slug").await, 404).await;
    }

    async fn a_rule_run_records_each_step_and_its_action_run(backend) {
        let app = spawn_app(backend).await;
        let doc = json!({
            "name": "nightly-backup",
            "on_failure": "continue",
            "steps": [
                {"action": "opsmanager.backup", "params": {}},
                {"action": "opsmanager.backup", "params": {"all_groups": true}}
            ]
        });
        assert_eq!(send(&app, Method::POST, "/rules", &doc).await.status().as_u16(), 201);
        let response = app.request(Method::POST, "/rules/nightly-backup/runs?dry_run=true").send().await.expect("send");
        assert_eq!(response.status().as_u16(), 201);
        let location = response.headers()["location"].to_str().expect("text").to_owned();
        let run: Value = response.json().await.expect("json");
        assert_eq!(run["trigger"], "manual");
        assert_eq!(run["dry_run"], true);
        assert_eq!(run["actor"], "test-admin");
        assert!(run["scheduled_for"].is_null());
        assert_eq!(run["outcome"], "failed", "Ops Manager is not configured here: {run}");
        assert_eq!(run["steps"].as_array().map(Vec::len), Some(2), "on_failure continue runs both");
        let action_run = run["steps"][1]["run_id"].as_str().expect("an action run");
        let recorded: Value = app.get(&format!("/runs/{action_run}")).await.json().await.expect("json");
        assert_eq!(recorded["trigger"], "rule");
        assert_eq!(recorded["actor"], "rule:nightly-backup");
        assert_eq!(recorded["dry_run"], true);

        let shown: Value = app.get(&location).await.json().await.expect("json");
        assert_eq!(shown, run);
        let runs: Value = app.get("/rules/nightly-backup/runs").await.json().await.expect("json");
        assert_eq!(runs["items"][0]["id"], run["id"]);
        assert_problem(app.request(Method::POST, "/rules/nightly-backup/runs?force=true").send().await.expect("send"), 400).await;
        assert_problem(app.request(Method::POST, "/rules/nope/runs").send().await.expect("send"), 404).await;
        assert_problem(app.get("/rules/nightly-backup/runs/not-a-uuid").await, 404).await;
    }

    async fn each_slot_runs_once_late_slots_are_missed_and_catch_up_is_bounded(backend) {
        let app = spawn_app(backend).await;
        let doc = json!({
            "name": "every-minute",
            "schedule": "* * * * *",
            "steps": [{"action": "opsmanager.backup", "params": {}}]
        });
        assert_eq!(send(&app, Method::POST, "/rules", &doc).await.status().as_u16(), 201);
        let ctx = &app.state.app;
        // The rule's slots start at its creation, now; ticks in the future stand for a
        // scheduler that was down until then.
        let base = OffsetDateTime::now_utc().replace_second(0).expect("second").replace_nanosecond(0).expect("nano");
        let tick = |at: OffsetDateTime| async move {
            pincher::scheduler::tick_once(ctx, "test-replica", at).await.expect("tick");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        };
        tick(base + time::Duration::minutes(2) + time::Duration::seconds(10)).await;
        tick(base + time::Duration::minutes(2) + time::Duration::seconds(40)).await;
        // Down for an hour: the 59 slots in between are missed, the latest (within catch-up)
        // runs once.
        tick(base + time::Duration::minutes(62) + time::Duration::seconds(5)).await;
        tick(base + time::Duration::minutes(62) + time::Duration::seconds(30)).await;

        let runs: Value = app.get("/rules/every-minute/runs?limit=500").await.json().await.expect("json");
        let runs = runs["items"].as_array().expect("items");
        let at = |minutes: i64| (base + time::Duration::minutes(minutes)).format(&time::format_description::well_known::Rfc3339).expect("format");
        let of_slot = |minutes: i64| -> Vec<&Value> {
            runs.iter().filter(|r| r["scheduled_for"] == at(minutes).as_str()).collect()
        };
        assert_eq!(of_slot(2).len(), 1, "one run for the slot, whatever the ticks");
        assert_ne!(of_slot(2)[0]["outcome"], "missed");
        assert_eq!(of_slot(1)[0]["outcome"], "missed", "superseded by the next slot");
        for minutes in 3..62 {
            let slot = of_slot(minutes);
            assert_eq!(slot.len(), 1, "slot {minutes}");
            assert_eq!(slot[0]["outcome"], "missed", "slot {minutes}: {}", slot[0]);
        }
        assert_eq!(of_slot(62).len(), 1);
        assert_ne!(of_slot(62)[0]["outcome"], "missed", "{runs:#?}");
        assert_eq!(runs.iter().filter(|r| r["outcome"] != "missed").count(), 2, "never once per missed tick");
    }
}
