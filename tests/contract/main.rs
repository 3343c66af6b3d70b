//! Contract fuzzing: schemathesis drives the running service from its own OpenAPI document —
//! every operation, positive and negative data, stateful sequences through the links — and
//! the run must find no server error and no response that breaks the document.

#[path = "../support/mod.rs"]
mod support;

use std::process::Command;

use support::database::{Backend, TestDatabase};
use support::moto::MotoOrg;
use support::opsmanager::{FakeOpsManager, PRIVATE_KEY, PUBLIC_KEY};
use support::server::{ServerProcess, create_token};

fn schemathesis() -> String {
    std::env::var("PINCHER_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "PINCHER_TEST_SCHEMATHESIS is not set: run the suite with ./scripts/test, which \
             installs schemathesis from PyPI"
        )
    })
}

async fn fuzz(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let opsmanager = FakeOpsManager::start(3).await;
    let work = tempfile::tempdir().expect("tempdir");
    let backups = work.path().join("backups");
    let groups = opsmanager.group_ids().join(",");
    let aws = MotoOrg::create(1).await;
    let aws_env = aws.env();
    let mut env = vec![
        ("PINCHER_DATABASE__URL", database.url.as_str()),
        ("PINCHER_OPSMANAGER__BASE_URL", opsmanager.base_url.as_str()),
        ("PINCHER_OPSMANAGER__PUBLIC_KEY", PUBLIC_KEY),
        ("PINCHER_OPSMANAGER__PRIVATE_KEY", PRIVATE_KEY),
        ("PINCHER_OPSMANAGER__GROUP_IDS", groups.as_str()),
        ("PINCHER_BACKUPS__DIR", backups.to_str().expect("path")),
        // A report over every region of every account of moto (single-threaded, shared by
        // the tests running at the same time) can take longer than the default 30 s.
        ("PINCHER_SERVER__REQUEST_TIMEOUT_SECS", "110"),
    ];
    env.extend(aws_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let token = create_token(work.path(), &env);
    let server = ServerProcess::start(work.path(), &env);
    let seed = std::env::var("PINCHER_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261126".into());
    let output = Command::new(schemathesis())
        .current_dir(work.path())
        .args(["run", &format!("{}/openapi.json", server.url())])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Every check, positive_data_acceptance included. hooks.py lists the rules JSON
        // Schema cannot state and the state-dependent refusals (a stale If-Match, an unknown
        // cursor); nothing else may be refused.
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env(
            "PYTHONPATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract"),
        )
        .args(["--checks", "all"])
        .args(["--max-examples", "40", "--seed", &seed, "--workers", "2"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "120", "--max-response-time", "120"])
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(
        report.contains("Tested: 14") || report.contains("Tested:"),
        "{report}"
    );
    let lines = server.lines.lock().expect("lock").clone();
    let server_errors: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["target"] == "pincher::access" && l["status"].as_u64().is_some_and(|s| s >= 500)
        })
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx answers during fuzzing: {server_errors:#?}"
    );
    let requests = lines
        .iter()
        .filter(|l| l["target"] == "pincher::access")
        .count();
    assert!(requests > 300, "the fuzzer sent only {requests} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_sqlite() {
    fuzz(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_postgres() {
    fuzz(Backend::Postgres).await;
}
