//! `pincher opsmanager backup`: naming, idempotence, partial failure, atomicity, locking and
//! the runs recorded in the database.

use serde_json::json;

use crate::both_backends;
use crate::harness::{Env, RunPincher, md5_hex, stderr, stdout, temp_files};
use pincher::db::backups as runs;

both_backends! {
    async fn first_backup_stores_every_group_byte_for_byte_and_records_the_run(backend) {
        let env = Env::new(backend, 5).await;
        env.fake.set_max_items_per_page(2);
        let out = env.json(&["opsmanager", "backup", "--all-groups"], 0).await;
        assert_eq!(out["summary"], json!({"stored": 5, "unchanged": 0, "failed": 0}), "{out}");
        assert_eq!(env.fake.counter("GET /groups"), 3, "listing follows every page");
        for group in env.fake.group_ids() {
            let path = env.expected_path(&group);
            let written = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(written, env.fake.config(&group), "byte-faithful copy of {group}");
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            assert_eq!(name, format!("1-{}.json", md5_hex(&written)));
            assert_eq!(env.files(&group), vec![name]);
        }
        let db = env.db();
        let recorded = runs::recent(&db, None, 100).await.expect("runs");
        assert_eq!(recorded.len(), 5);
        assert!(recorded.iter().all(|r| r.outcome == "stored" && r.version == Some(1) && r.md5.is_some() && r.bytes.unwrap_or(0) > 1000), "{recorded:?}");
        let last = runs::last_success_per_group(&db).await.expect("last success");
        assert_eq!(last.iter().map(|l| l.group_id.clone()).collect::<Vec<_>>(), env.fake.group_ids());
        db.close().await;
    }

    async fn an_unchanged_run_writes_nothing_and_a_changed_config_gives_a_new_file(backend) {
        let env = Env::new(backend, 3).await;
        let ids = env.fake.group_ids();
        let first = env.ok(&["opsmanager", "backup", "--all-groups"]).await;
        assert_eq!(first.matches("stored").count(), 3, "{first}");
        let modified = |group: &str| {
            std::fs::metadata(env.expected_path(group)).and_then(|m| m.modified()).expect("mtime")
        };
        let before: Vec<_> = ids.iter().map(|g| modified(g)).collect();

        let second = env.ok(&["opsmanager", "backup", "--all-groups"]).await;
        assert_eq!(second.matches("unchanged").count(), 3, "{second}");
        assert_eq!(ids.iter().map(|g| modified(g)).collect::<Vec<_>>(), before);
        assert!(ids.iter().all(|g| env.files(g).len() == 1));

        env.fake.change_config(&ids[1], "/processes/0/args2_6/net/port", json!(27018));
        let third = env.json(&["opsmanager", "backup", "--all-groups"], 0).await;
        assert_eq!(third["summary"], json!({"stored": 1, "unchanged": 2, "failed": 0}), "{third}");
        assert_eq!(third["results"][1]["group_id"], ids[1].as_str());
        assert_eq!(third["results"][1]["outcome"], "stored");
        assert_eq!(third["results"][1]["version"], 2);
        let files = env.files(&ids[1]);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[1].starts_with("2-"), "{files:?}");
        assert_eq!(std::fs::read(env.expected_path(&ids[1])).expect("read"), env.fake.config(&ids[1]));

        let db = env.db();
        let recorded = runs::recent(&db, Some(ids[1].as_str()), 100).await.expect("runs");
        assert_eq!(recorded.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["stored", "unchanged", "stored"]);
        db.close().await;
    }

    async fn one_group_down_exits_3_with_the_others_saved(backend) {
        let env = Env::new(backend, 3).await;
        let ids = env.fake.group_ids();
        env.fake.fail_group(&ids[1]);
        let output = env.run(&["opsmanager", "backup", "--all-groups"]).await;
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains(&format!("failed     {}: Ops Manager answered GET", ids[1])), "{text}");
        assert!(text.contains("HTTP 500") && text.contains("UNEXPECTED_ERROR"), "{text}");
        assert_eq!(env.fake.counter("500"), 3, "the 500 is retried max_retries (2) times");
        for group in [&ids[0], &ids[2]] {
            assert!(env.expected_path(group).is_file());
        }
        assert!(env.files(&ids[1]).is_empty());

        let db = env.db();
        let failed = runs::recent(&db, Some(ids[1].as_str()), 10).await.expect("runs");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].outcome, "failed");
        assert!(failed[0].error.as_deref().unwrap_or_default().contains("HTTP 500"));
        let last = runs::last_success_per_group(&db).await.expect("last");
        assert_eq!(last.iter().map(|l| l.group_id.clone()).collect::<Vec<_>>(), vec![ids[0].clone(), ids[2].clone()]);
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_give_a_clear_error_and_exit_1() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 2).await;
    for args in [
        vec!["opsmanager", "backup", "--all-groups"],
        vec![
            "opsmanager",
            "backup",
            "--group",
            "5f0000000000000000000000",
        ],
    ] {
        let output = env
            .run_with(
                &args,
                &[("PINCHER_OPSMANAGER__PRIVATE_KEY", "wrong-private-key-123")],
            )
            .await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains("rejected the API key pincher-test-public (HTTP 401)"),
            "{err}"
        );
        assert!(err.contains("opsmanager.private_key"), "{err}");
        assert!(
            !err.contains("wrong-private-key-123")
                && !stdout(&output).contains("wrong-private-key-123"),
            "{err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "{err}");
    }
    assert!(!env.dir.exists() || std::fs::read_dir(&env.dir).expect("dir").count() <= 1);
    assert_eq!(env.fake.counter("GET automationConfig"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_list_and_unknown_group_errors_say_what_to_fix() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 1).await;
    let output = env
        .run(&[
            "opsmanager",
            "backup",
            "--group",
            "5fffffffffffffffffffffff",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("Ops Manager has no group 5fffffffffffffffffffffff (HTTP 404)"),
        "{}",
        stdout(&output)
    );

    env.fake.deny_address();
    let output = env.run(&["opsmanager", "backup", "--all-groups"]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("HTTP 403")
            && err.contains("access list")
            && err.contains("IP_ADDRESS_NOT_ON_ACCESS_LIST"),
        "{err}"
    );

    let output = env.run(&["opsmanager", "backup"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("opsmanager.group_ids"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_write_and_rename_leaves_no_partial_file() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 2).await;
    let ids = env.fake.group_ids();
    // A folder where the file should land makes the rename fail after the temp file is
    // written and fsynced.
    let target = env.expected_path(&ids[0]);
    std::fs::create_dir_all(target.join("blocker")).expect("mkdir");
    let output = env.run(&["opsmanager", "backup", "--all-groups"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("failed     {}: cannot write", ids[0])),
        "{}",
        stdout(&output)
    );
    assert_eq!(temp_files(&env.dir), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        env.files(&ids[0]),
        vec![
            target
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        ]
    );
    assert!(target.is_dir());
    assert!(env.expected_path(&ids[1]).is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_do_not_corrupt_anything() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 6).await;
    env.ok(&["db", "migrate"]).await;
    let args = ["opsmanager", "backup", "--all-groups", "--quiet"];
    let vars = [("PINCHER_LOG", "info")];
    let (a, b, c, d) = tokio::join!(
        env.run_with(&args, &vars),
        env.run_with(&args, &vars),
        env.run_with(&args, &vars),
        env.run_with(&args, &vars)
    );
    let outputs = [a, b, c, d];
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
        assert!(
            output.stdout.is_empty(),
            "--quiet prints nothing on success"
        );
    }
    for group in env.fake.group_ids() {
        assert_eq!(env.files(&group).len(), 1, "{group}");
        assert_eq!(
            std::fs::read(env.expected_path(&group)).expect("read"),
            env.fake.config(&group)
        );
    }
    assert!(temp_files(&env.dir).is_empty());
    env.ok(&["opsmanager", "backups", "verify"]).await;
    let db = env.db();
    let recorded = runs::recent(&db, None, 100).await.expect("runs");
    assert_eq!(recorded.len(), 24);
    assert_eq!(
        recorded.iter().filter(|r| r.outcome == "stored").count(),
        6,
        "each group stored once"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_nonces_are_answered_with_a_fresh_challenge_during_a_run() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 8).await;
    env.fake.set_nonce_max_uses(5);
    env.fake.set_max_items_per_page(3);
    let out = env.json(&["opsmanager", "backup", "--all-groups"], 0).await;
    assert_eq!(out["summary"]["stored"], 8, "{out}");
    assert!(
        env.fake.counter("stale") >= 2,
        "stale challenges: {}",
        env.fake.counter("stale")
    );
    assert_eq!(
        env.fake.counter("unauthorized"),
        1,
        "one initial challenge, then only stale ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_still_written_when_the_database_is_down() {
    let env = Env::new(crate::support::database::Backend::Sqlite, 2).await;
    let output = env
        .run_with(
            &["opsmanager", "backup", "--all-groups"],
            &[
                (
                    "PINCHER_DATABASE__URL",
                    "postgres://app:db-pw-123@127.0.0.1:1/pincher",
                ),
                ("PINCHER_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
            ],
        )
        .await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("could not be recorded") && !err.contains("db-pw-123"),
        "{err}"
    );
    for group in env.fake.group_ids() {
        assert!(env.expected_path(&group).is_file());
    }
}
