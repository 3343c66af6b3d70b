//! Rules over Ops Manager backups: steps that fail and `on_failure`, and the scheduler —
//! two `pincher daemon` replicas on one PostgreSQL database running each slot once, and a
//! replica killed mid-run leaving its run abandoned once its lease expires.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, RunPincher, stderr};
use crate::support::database::Backend;
use crate::support::server::ServerProcess;

/// Writes `rule` to a file in the test's folder and applies it.
async fn apply(env: &Env, rule: &Value) {
    let file = env.database.dir.path().join("rule.json");
    std::fs::write(&file, rule.to_string()).expect("write the rule");
    env.ok(&["rules", "apply", file.to_str().expect("path")])
        .await;
}

/// The rule's runs, oldest first.
async fn runs(env: &Env, rule: &str) -> Vec<Value> {
    let mut runs = env
        .json(&["rules", "runs", rule, "--limit", "500"], 0)
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    runs.reverse();
    runs
}

fn two_step_rule(on_failure: &str, first: &str, second: &str) -> Value {
    json!({
        "name": format!("backups-{on_failure}"),
        "on_failure": on_failure,
        "steps": [
            {"action": "opsmanager.backup", "params": {"groups": [first]}},
            {"action": "opsmanager.backup", "params": {"groups": [second]}}
        ]
    })
}

crate::both_backends! {
    async fn on_failure_stop_and_continue_behave_as_named(backend) {
        let env = Env::new(backend, 2).await;
        let ids = env.fake.group_ids();
        env.fake.fail_group(&ids[0]);

        apply(&env, &two_step_rule("stop", &ids[0], &ids[1])).await;
        let stopped = env.json(&["rules", "run", "backups-stop"], 1).await;
        assert_eq!(stopped["outcome"], "failed", "{stopped}");
        assert_eq!(stopped["steps"][0]["outcome"], "failed");
        assert_eq!(stopped["steps"][1]["outcome"], "skipped");
        assert!(stopped["steps"][1]["run_id"].is_null(), "the second step did not run");
        assert!(!env.expected_path(&ids[1]).exists());

        apply(&env, &two_step_rule("continue", &ids[0], &ids[1])).await;
        let continued = env.json(&["rules", "run", "backups-continue"], 3).await;
        assert_eq!(continued["outcome"], "partial", "{continued}");
        assert_eq!(continued["steps"][0]["outcome"], "failed");
        assert_eq!(continued["steps"][1]["outcome"], "ok");
        assert!(env.expected_path(&ids[1]).is_file());

        let action_run = continued["steps"][1]["run_id"].as_str().expect("an action run");
        let recorded = env.json(&["runs", "show", action_run], 0).await;
        assert_eq!(recorded["trigger"], "rule");
        assert_eq!(recorded["actor"], "rule:backups-continue");
        assert_eq!(runs(&env, "backups-continue").await.len(), 1);
    }
}

/// `env`'s settings as the environment of a daemon, with a short tick and lease.
fn daemon_vars(env: &Env, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = env.vars();
    vars.retain(|(key, _)| key != "PINCHER_LOG");
    vars.push(("PINCHER_SCHEDULER__TICK_MS".into(), "200".into()));
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    vars
}

fn borrowed(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn slot(run: &Value) -> time::OffsetDateTime {
    let text = run["scheduled_for"].as_str().expect("a scheduled run");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_run_every_slot_exactly_once() {
    let env = Env::new(Backend::Postgres, 1).await;
    let group = env.fake.group_ids()[0].clone();
    apply(
        &env,
        &json!({
            "name": "every-two-seconds",
            "schedule": "*/2 * * * * *",
            "steps": [{"action": "opsmanager.backup", "params": {"groups": [group]}}]
        }),
    )
    .await;
    let vars = daemon_vars(&env, &[]);
    let dir = env.database.dir.path();
    let mut first = ServerProcess::daemon(dir, &borrowed(&vars));
    let mut second = ServerProcess::daemon(dir, &borrowed(&vars));
    tokio::time::sleep(Duration::from_secs(21)).await;
    first.sigterm();
    second.sigterm();
    assert!(first.wait_exit(Duration::from_secs(20)).success());
    assert!(second.wait_exit(Duration::from_secs(20)).success());

    let runs = runs(&env, "every-two-seconds").await;
    let mut ran: Vec<&Value> = runs.iter().filter(|r| r["outcome"] != "missed").collect();
    ran.sort_by_key(|r| slot(r));
    assert!(ran.len() >= 9, "{} runs in 21 s: {runs:#?}", ran.len());
    for pair in ran.windows(2) {
        assert_eq!(
            slot(pair[1]) - slot(pair[0]),
            time::Duration::seconds(2),
            "consecutive slots, each once: {:#?}",
            pair
        );
    }
    for run in &ran {
        assert_eq!(run["outcome"], "ok", "{run}");
        assert_eq!(run["trigger"], "schedule");
    }
    let missed: Vec<&Value> = runs.iter().filter(|r| r["outcome"] == "missed").collect();
    assert!(
        missed.iter().all(|r| slot(r) < slot(ran[0])),
        "no slot was missed once the daemons ran: {missed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_leaves_its_run_abandoned_after_the_lease_and_the_slot_never_reruns() {
    let env = Env::new(Backend::Postgres, 1).await;
    let group = env.fake.group_ids()[0].clone();
    env.fake.set_latency(Duration::from_secs(3));
    apply(
        &env,
        &json!({
            "name": "slow-backup",
            "schedule": "*/5 * * * * *",
            "steps": [{"action": "opsmanager.backup", "params": {"groups": [group]}}]
        }),
    )
    .await;
    let vars = daemon_vars(&env, &[("PINCHER_SCHEDULER__LEASE_SECS", "2")]);
    let dir = env.database.dir.path();
    let mut doomed = ServerProcess::daemon(dir, &borrowed(&vars));

    let started = Instant::now();
    let claimed = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run was claimed"
        );
        if let Some(run) = runs(&env, "slow-backup")
            .await
            .into_iter()
            .find(|r| r["outcome"] == "running" && r["steps"][0]["run_id"].is_string())
        {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    doomed.sigkill();
    doomed.wait_exit(Duration::from_secs(10));

    let _survivor = ServerProcess::daemon(dir, &borrowed(&vars));
    let started = Instant::now();
    let abandoned = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run was never abandoned"
        );
        let runs = runs(&env, "slow-backup").await;
        let same_slot: Vec<&Value> = runs
            .iter()
            .filter(|r| r["scheduled_for"] == claimed["scheduled_for"])
            .collect();
        assert_eq!(same_slot.len(), 1, "the slot ran again: {runs:#?}");
        if same_slot[0]["outcome"] == "abandoned" {
            break same_slot[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        abandoned["error"]
            .as_str()
            .is_some_and(|e| e.contains("lease")),
        "{abandoned}"
    );
    let action_run = abandoned["steps"][0]["run_id"]
        .as_str()
        .expect("the step's run");
    let shown = env.json(&["runs", "show", action_run], 0).await;
    assert_eq!(shown["outcome"], "abandoned", "{shown}");
    let output = env.run(&["rules", "runs", "slow-backup"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_current_step_finish_and_says_where_the_run_stopped() {
    let env = Env::new(Backend::Sqlite, 1).await;
    let group = env.fake.group_ids()[0].clone();
    env.fake.set_latency(Duration::from_millis(700));
    apply(
        &env,
        &json!({
            "name": "two-backups",
            "schedule": "*/3 * * * * *",
            "steps": [
                {"action": "opsmanager.backup", "params": {"groups": [group]}},
                {"action": "opsmanager.backup", "params": {"groups": [group]}}
            ]
        }),
    )
    .await;
    let vars = daemon_vars(&env, &[("PINCHER_SERVER__DRAIN_TIMEOUT_SECS", "20")]);
    let mut daemon = ServerProcess::daemon(env.database.dir.path(), &borrowed(&vars));
    let started = Instant::now();
    let running = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no step started"
        );
        if let Some(run) = runs(&env, "two-backups")
            .await
            .into_iter()
            .find(|r| r["outcome"] == "running" && r["steps"][0]["outcome"] == "running")
        {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(30)).success());

    let ended = runs(&env, "two-backups")
        .await
        .into_iter()
        .find(|r| r["id"] == running["id"])
        .expect("the run");
    assert_eq!(ended["outcome"], "abandoned", "{ended}");
    assert_eq!(
        ended["steps"][0]["outcome"], "ok",
        "the current step finished: {ended}"
    );
    assert_eq!(ended["steps"][1]["outcome"], "skipped", "{ended}");
    assert!(
        ended["error"]
            .as_str()
            .is_some_and(|e| e.contains("after step 1 of 2")),
        "{ended}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_scheduler_runs_due_rules_on_sqlite() {
    let env = Env::new(Backend::Sqlite, 1).await;
    let group = env.fake.group_ids()[0].clone();
    apply(
        &env,
        &json!({
            "name": "every-second",
            "schedule": "* * * * * *",
            "steps": [{"action": "opsmanager.backup", "params": {"groups": [group]}}]
        }),
    )
    .await;
    let vars = daemon_vars(&env, &[]);
    let mut server =
        ServerProcess::start_with(env.database.dir.path(), &borrowed(&vars), &["--scheduler"]);
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no scheduled run"
        );
        let ok = runs(&env, "every-second")
            .await
            .into_iter()
            .filter(|r| r["outcome"] == "ok" && r["trigger"] == "schedule")
            .count();
        if ok >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    assert!(env.expected_path(&group).is_file());
}
