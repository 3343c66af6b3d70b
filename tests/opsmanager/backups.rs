//! `pincher opsmanager backups list|verify|diff|prune|restore`.

use serde_json::{Value, json};

use crate::harness::{Env, RunPincher, md5_hex, stderr, stdout};
use crate::support::database::Backend;

async fn env_with_history(groups: usize, versions: usize) -> Env {
    let env = Env::new(Backend::Sqlite, groups).await;
    let ids = env.fake.group_ids();
    env.ok(&["opsmanager", "backup", "--all-groups"]).await;
    for port in 1..versions {
        env.fake.change_config(
            &ids[0],
            "/processes/0/args2_6/net/port",
            json!(27017 + port),
        );
        env.ok(&["opsmanager", "backup", "--all-groups"]).await;
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_version_md5_size_and_time_newest_first() {
    let env = env_with_history(2, 3).await;
    let ids = env.fake.group_ids();
    let all = env.json(&["opsmanager", "backups", "list"], 0).await;
    assert_eq!(all.as_array().map(Vec::len), Some(4), "{all}");
    let only = env
        .json(&["opsmanager", "backups", "list", "--group", &ids[0]], 0)
        .await;
    let versions: Vec<_> = only
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["version"].clone())
        .collect();
    assert_eq!(versions, vec![json!(3), json!(2), json!(1)]);
    let first = &only[0];
    assert_eq!(first["group_id"], ids[0].as_str());
    assert_eq!(first["md5"].as_str().map(str::len), Some(32));
    assert!(
        first["bytes"].as_u64().unwrap_or(0) > 1000 && first["modified"].is_string(),
        "{first}"
    );
    let table = env.ok(&["opsmanager", "backups", "list"]).await;
    assert!(
        table.contains("version") && table.contains(&ids[1]),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_flipped_byte() {
    let env = env_with_history(2, 1).await;
    let ids = env.fake.group_ids();
    let out = env.ok(&["opsmanager", "backups", "verify"]).await;
    assert_eq!(out.matches("  ok").count(), 2, "{out}");

    let path = env.expected_path(&ids[1]);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let output = env.run(&["opsmanager", "backups", "verify"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("MISMATCH"), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("1 of 2 backup(s) do not match"),
        "{}",
        stderr(&output)
    );
    let report = env
        .run(&["opsmanager", "backups", "verify", "--output", "json"])
        .await;
    let report: Value = serde_json::from_slice(&report.stdout).expect("json");
    assert_eq!(
        report
            .as_array()
            .expect("array")
            .iter()
            .filter(|r| r["ok"] == false)
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_paths_and_values_with_secrets_masked() {
    let env = env_with_history(1, 1).await;
    let group = &env.fake.group_ids()[0];
    let old = env.expected_path(group);
    let secret_key = "bmV3LWtleWZpbGUtY29udGVudHM=".repeat(20);
    env.fake
        .change_config(group, "/auth/key", json!(secret_key));
    env.fake
        .change_config(group, "/replicaSets/0/members/2/priority", json!(0.5));
    env.ok(&["opsmanager", "backup", "--group", group]).await;
    let new = env.expected_path(group);
    let (a, b) = (old.to_str().expect("path"), new.to_str().expect("path"));
    let changes = env.json(&["opsmanager", "backups", "diff", a, b], 0).await;
    assert!(
        changes.as_array().expect("array").contains(
            &json!({"op": "changed", "path": "/auth/key", "from": "[redacted]", "to": "[redacted]"})
        ),
        "{changes}"
    );
    assert!(changes.as_array().expect("array").contains(&json!({"op": "changed", "path": "/replicaSets/0/members/2/priority", "from": 1.0, "to": 0.5})), "{changes}");
    assert!(
        changes
            .as_array()
            .expect("array")
            .contains(&json!({"op": "changed", "path": "/version", "from": 1, "to": 3})),
        "{changes}"
    );
    let text = env.ok(&["opsmanager", "backups", "diff", a, b]).await;
    assert!(
        text.contains("~ /replicaSets/0/members/2/priority: 1.0 -> 0.5"),
        "{text}"
    );
    assert!(
        !text.contains("bmV3LWtleWZpbGU") && !text.contains("c2VjcmV0LWtleWZpbGU"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_never_deletes_the_newest_backup_of_a_group() {
    let env = env_with_history(2, 4).await;
    let ids = env.fake.group_ids();
    let out = env
        .ok(&["opsmanager", "backups", "prune", "--keep", "2"])
        .await;
    assert!(out.contains("deleted 2 backup(s)"), "{out}");
    let left: Vec<String> = env.files(&ids[0]);
    assert_eq!(left.len(), 2);
    assert!(
        left.iter().any(|n| n.starts_with("4-")) && left.iter().any(|n| n.starts_with("3-")),
        "{left:?}"
    );
    assert_eq!(env.files(&ids[1]).len(), 1);

    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 86_400);
    for group in &ids {
        for name in env.files(group) {
            let file = std::fs::File::options()
                .write(true)
                .open(env.dir.join(group).join(name))
                .expect("open");
            file.set_modified(old).expect("set mtime");
        }
    }
    // A retention longer than the calendar keeps everything instead of overflowing.
    let deleted = env
        .json(
            &[
                "opsmanager",
                "backups",
                "prune",
                "--keep-days",
                "4294967295",
            ],
            0,
        )
        .await;
    assert_eq!(deleted.as_array().map(Vec::len), Some(0), "{deleted}");
    let deleted = env
        .json(&["opsmanager", "backups", "prune", "--keep-days", "30"], 0)
        .await;
    assert_eq!(deleted.as_array().map(Vec::len), Some(1), "{deleted}");
    assert_eq!(env.files(&ids[0]).len(), 1);
    assert!(env.files(&ids[0])[0].starts_with("4-"));
    assert_eq!(
        env.files(&ids[1]).len(),
        1,
        "a group's only backup is kept however old"
    );
    assert_eq!(
        env.run(&["opsmanager", "backups", "prune"])
            .await
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_refused_without_yes_and_on_version_drift() {
    let env = env_with_history(1, 1).await;
    let group = env.fake.group_ids()[0].clone();
    let file = env.expected_path(&group);
    env.fake
        .change_config(&group, "/options/downloadBase", json!("/srv/mms"));
    let file = file.to_str().expect("path");

    let output = env
        .run(&["opsmanager", "backups", "restore", file, "--group", &group])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("without --yes: there is no terminal"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains(
            "~ /options/downloadBase: \"/srv/mms\" -> \"/var/lib/mongodb-mms-automation\""
        ),
        "{}",
        stdout(&output)
    );

    let dry = env
        .ok(&[
            "opsmanager",
            "backups",
            "restore",
            file,
            "--group",
            &group,
            "--dry-run",
        ])
        .await;
    assert!(dry.contains("dry run: nothing was changed"), "{dry}");

    env.fake.change_after_next_get(&group);
    let output = env
        .run(&[
            "opsmanager",
            "backups",
            "restore",
            file,
            "--group",
            &group,
            "--yes",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("moved from version 2 to 3"),
        "{}",
        stderr(&output)
    );
    assert!(env.fake.puts().is_empty(), "nothing was PUT");

    let mut tampered = std::fs::read(file).expect("read");
    tampered[50] ^= 0x02;
    std::fs::write(file, tampered).expect("write");
    let output = env
        .run(&[
            "opsmanager",
            "backups",
            "restore",
            file,
            "--group",
            &group,
            "--yes",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not match"),
        "{}",
        stderr(&output)
    );
    assert!(env.fake.puts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_round_trip_is_byte_faithful() {
    let env = env_with_history(1, 1).await;
    let group = env.fake.group_ids()[0].clone();
    let path = env.expected_path(&group);
    let original = std::fs::read(&path).expect("read");
    env.fake
        .change_config(&group, "/auth/usersWanted/0/roles/0/role", json!("root"));

    let out = env
        .ok(&[
            "opsmanager",
            "backups",
            "restore",
            path.to_str().expect("path"),
            "--group",
            &group,
            "--yes",
        ])
        .await;
    assert!(
        out.contains("~ /auth/usersWanted/0/roles/0/role: \"root\" -> \"readWriteAnyDatabase\""),
        "{out}"
    );
    assert!(out.contains("live version is now 3"), "{out}");
    let puts = env.fake.puts();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].1, original,
        "the PUT body is the backup, byte for byte"
    );

    let mut live: Value = serde_json::from_slice(&env.fake.config(&group)).expect("json");
    let backup: Value = serde_json::from_slice(&original).expect("json");
    assert_eq!(live["version"], 3);
    live["version"] = backup["version"].clone();
    assert_eq!(live, backup);

    env.ok(&["opsmanager", "backup", "--group", &group]).await;
    assert_eq!(
        env.files(&group).len(),
        2,
        "the v1 backup and the restored v3"
    );
    assert_eq!(
        std::fs::read(env.expected_path(&group)).expect("read"),
        env.fake.config(&group)
    );
}

/// Runs `pincher ARGS…` on a pseudo-terminal (util-linux `script`), typing `answer`.
async fn on_a_terminal(env: &Env, args: &[&str], answer: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let line = std::iter::once(env!("CARGO_BIN_EXE_pincher"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = env.command("script");
    command
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .expect("util-linux `script` is needed to give pincher a terminal");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).await.expect("type");
    let output = child.wait_with_output().await.expect("wait");
    drop(stdin);
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_asks_on_a_terminal_and_stops_unless_told_yes() {
    let env = env_with_history(1, 1).await;
    let group = env.fake.group_ids()[0].clone();
    let file = env.expected_path(&group);
    env.fake
        .change_config(&group, "/options/downloadBase", json!("/srv/mms"));
    let args = [
        "opsmanager",
        "backups",
        "restore",
        file.to_str().expect("path"),
        "--group",
        &group,
    ];

    let output = on_a_terminal(&env, &args, "n\n").await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "Replace the live automation configuration of group {group}? [y/N]"
        )),
        "{text}"
    );
    assert!(text.contains("restore cancelled"), "{text}");
    assert!(env.fake.puts().is_empty());

    let output = on_a_terminal(&env, &args, "y\n").await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("live version is now 3"), "{text}");
    assert_eq!(env.fake.puts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_planted_file_unless_it_is_trusted() {
    let env = env_with_history(1, 1).await;
    let group = env.fake.group_ids()[0].clone();
    let original = std::fs::read(env.expected_path(&group)).expect("read");
    let mut planted: Value = serde_json::from_slice(&original).expect("json");
    planted["options"]["downloadBase"] = json!("/tmp/evil");
    let bytes = serde_json::to_vec(&planted).expect("json");
    let md5 = md5_hex(&bytes);
    let version = planted["version"].as_i64().expect("version");
    let path = env.dir.join(&group).join(format!("{version}-{md5}.json"));
    std::fs::write(&path, &bytes).expect("plant a file");
    let file = path.to_str().expect("path");

    let output = env
        .run(&[
            "opsmanager",
            "backups",
            "restore",
            file,
            "--group",
            &group,
            "--yes",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no record of writing a backup with md5")
            && stderr(&output).contains("--trust-file"),
        "{}",
        stderr(&output)
    );
    assert!(env.fake.puts().is_empty(), "nothing was PUT");

    let out = env
        .ok(&[
            "opsmanager",
            "backups",
            "restore",
            file,
            "--group",
            &group,
            "--yes",
            "--trust-file",
        ])
        .await;
    assert!(out.contains("/options/downloadBase"), "{out}");
    assert_eq!(env.fake.puts().len(), 1);
}
