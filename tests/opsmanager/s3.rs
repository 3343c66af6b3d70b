//! Backups in an S3 bucket (`backups.s3_bucket`, `backups.s3_prefix`) on the moto server: the
//! same names, idempotence, listing, verifying, pruning and restoring as the folder.

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::harness::{RunPincher, md5_hex, stderr, stdout};
use crate::s3_harness::{PREFIX, S3World};
use crate::support::server::{ServerProcess, client, create_token};
use pincher::db::backups as runs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_first_backup_stores_each_group_under_its_key_byte_for_byte() {
    let world = S3World::new(3).await;
    let ids = world.env.fake.group_ids();
    let out = world
        .json(&["opsmanager", "backup", "--all-groups"], 0)
        .await;
    assert_eq!(
        out["summary"],
        json!({"stored": 3, "unchanged": 0, "failed": 0}),
        "{out}"
    );
    let mut expected_keys = Vec::new();
    for (index, group) in ids.iter().enumerate() {
        let key = world.key(group);
        let served = world.env.fake.config(group);
        let stored = world.get(&key).await;
        assert_eq!(stored, served, "byte-faithful copy of {group}");
        assert_eq!(
            key,
            format!("{PREFIX}{group}/1-{}.json", md5_hex(&stored)),
            "the name carries the MD5 of exactly the stored bytes"
        );
        assert_eq!(out["results"][index]["path"], world.uri(&key), "{out}");
        expected_keys.push(key);
    }
    let keys: Vec<String> = world.objects().await.into_iter().map(|(k, _)| k).collect();
    expected_keys.sort();
    assert_eq!(keys, expected_keys, "nothing else is written");
    assert!(
        !world.env.dir.exists(),
        "the local folder is not used when a bucket is set"
    );

    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key(&expected_keys[0])
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_type(), Some("application/json"));

    let puts = world.puts();
    assert_eq!(puts.len(), 3, "one PutObject per group");
    for put in &puts {
        assert_eq!(
            put.headers.get("if-none-match").map(|v| v.as_bytes()),
            Some(&b"*"[..]),
            "a conditional write: {:?}",
            put.uri
        );
        let key = put
            .uri
            .split('?')
            .next()
            .and_then(|p| p.strip_prefix(&format!("/{}/", world.bucket)))
            .expect("a key");
        let bytes = world.get(key).await;
        let digest = Md5::digest(&bytes);
        assert_eq!(
            put.headers.get("content-md5").and_then(|v| v.to_str().ok()),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(digest)
                    .as_str()
            ),
            "Content-MD5 of {key}"
        );
    }

    let local = world.env.database.dir.path().join("forced-local");
    let local_arg = local.to_str().expect("path");
    world
        .ok(&["opsmanager", "backup", "--all-groups", "--dir", local_arg])
        .await;
    assert_eq!(world.puts().len(), 3, "--dir forces the local folder");
    for group in &ids {
        let name = world
            .key(group)
            .rsplit('/')
            .next()
            .expect("name")
            .to_owned();
        assert_eq!(
            std::fs::read(local.join(group).join(name)).expect("a local backup"),
            world.env.fake.config(group)
        );
    }

    let db = world.env.db();
    let recorded: Vec<_> = runs::recent(&db, None, 100)
        .await
        .expect("runs")
        .into_iter()
        .filter(|r| r.path.as_deref().is_some_and(|p| p.starts_with("s3://")))
        .collect();
    assert_eq!(recorded.len(), 3);
    for run in &recorded {
        let key = world.key(&run.group_id);
        assert_eq!(
            run.path.as_deref(),
            Some(world.uri(&key).as_str()),
            "{run:?}"
        );
        assert_eq!(run.outcome, "stored");
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_an_unchanged_run_writes_nothing_and_a_changed_config_gives_a_new_object() {
    let world = S3World::new(3).await;
    let ids = world.env.fake.group_ids();
    world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    let before = world.objects().await;
    assert_eq!(before.len(), 3);
    world.proxy.clear();

    let second = world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    assert_eq!(second.matches("unchanged").count(), 3, "{second}");
    assert!(world.puts().is_empty(), "an unchanged run writes nothing");
    assert_eq!(
        world.objects().await,
        before,
        "same objects, same LastModified"
    );

    world
        .env
        .fake
        .change_config(&ids[1], "/processes/0/args2_6/net/port", json!(27018));
    let third = world
        .json(&["opsmanager", "backup", "--all-groups"], 0)
        .await;
    assert_eq!(
        third["summary"],
        json!({"stored": 1, "unchanged": 2, "failed": 0}),
        "{third}"
    );
    assert_eq!(third["results"][1]["version"], 2);
    let keys = world.keys_of(&ids[1]).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&world.key(&ids[1])), "{keys:?}");
    assert!(world.key(&ids[1]).contains("/2-"));
    assert_eq!(
        world.get(&world.key(&ids[1])).await,
        world.env.fake.config(&ids[1])
    );
    assert_eq!(world.puts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_concurrent_writer_of_the_same_name_leaves_the_backup_unchanged() {
    let world = S3World::new(2).await;
    world.proxy.race_puts(true);
    let out = world
        .json(&["opsmanager", "backup", "--all-groups"], 0)
        .await;
    assert_eq!(
        out["summary"],
        json!({"stored": 0, "unchanged": 2, "failed": 0}),
        "the conditional PutObject lost to the other writer (412), which is no failure: {out}"
    );
    for group in world.env.fake.group_ids() {
        assert_eq!(world.keys_of(&group).await, vec![world.key(&group)]);
        assert_eq!(
            world.get(&world.key(&group)).await,
            world.env.fake.config(&group)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_list_pages_through_more_than_a_thousand_backups() {
    let world = S3World::new(1).await;
    let group = world.env.fake.group_ids()[0].clone();
    world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    let mut seeded: Vec<(String, Vec<u8>)> = (2..=1105)
        .map(|version| {
            let bytes = format!("{{\"version\":{version}}}").into_bytes();
            let key = format!("{PREFIX}{group}/{version}-{}.json", md5_hex(&bytes));
            (key, bytes)
        })
        .collect();
    for junk in [
        format!("{PREFIX}{group}/notes.txt"),
        format!("{PREFIX}{group}/7-nothex.json"),
        format!("{PREFIX}{group}/sub/9-{}.json", md5_hex(b"x")),
        format!("{PREFIX}README"),
        format!("elsewhere/{group}/3-{}.json", md5_hex(b"y")),
    ] {
        seeded.push((junk, b"{}".to_vec()));
    }
    world.put_many(seeded).await;
    world.proxy.clear();

    let listed = world.json(&["opsmanager", "backups", "list"], 0).await;
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 1105, "every backup, and nothing else");
    let versions: Vec<i64> = listed
        .iter()
        .map(|e| e["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, (1..=1105).rev().collect::<Vec<_>>());
    assert_eq!(listed[0]["path"], world.uri(&listed_key(&listed[0])));
    assert!(listed.iter().all(|e| e["group_id"] == group.as_str()));
    assert!(
        listed[1104]["bytes"].as_u64().unwrap_or(0) > 1000,
        "{}",
        listed[1104]
    );

    let lists: Vec<String> = world
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.uri.contains("list-type=2"))
        .map(|r| r.uri)
        .collect();
    assert_eq!(lists.len(), 2, "two pages: {lists:?}");
    assert!(
        lists[1].contains("continuation-token="),
        "the second page continues the first: {lists:?}"
    );
    assert!(
        lists
            .iter()
            .all(|l| l.contains("prefix=ops%2Fopsmanager%2F")),
        "{lists:?}"
    );
}

fn listed_key(entry: &Value) -> String {
    format!(
        "{PREFIX}{}/{}-{}.json",
        entry["group_id"].as_str().expect("group"),
        entry["version"],
        entry["md5"].as_str().expect("md5")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_verify_catches_a_tampered_object_and_restore_refuses_it() {
    let world = S3World::new(2).await;
    let ids = world.env.fake.group_ids();
    world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    let out = world.ok(&["opsmanager", "backups", "verify"]).await;
    assert_eq!(out.matches("  ok").count(), 2, "{out}");
    assert!(out.contains(&world.uri(&world.key(&ids[0]))), "{out}");

    let key = world.key(&ids[1]);
    let mut bytes = world.get(&key).await;
    bytes[100] ^= 0x01;
    world.put(&key, bytes).await;
    let output = world.run(&["opsmanager", "backups", "verify"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains(&format!("{}  MISMATCH", world.uri(&key))),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("1 of 2 backup(s) do not match"),
        "{}",
        stderr(&output)
    );
    let report = world
        .run(&["opsmanager", "backups", "verify", "--output", "json"])
        .await;
    let report: Value = serde_json::from_slice(&report.stdout).expect("json");
    let bad: Vec<&Value> = report
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["ok"] == false)
        .collect();
    assert_eq!(bad.len(), 1, "{report}");
    assert_eq!(bad[0]["entry"]["group_id"], ids[1].as_str());

    let uri = world.uri(&key);
    let output = world
        .run(&[
            "opsmanager",
            "backups",
            "restore",
            &uri,
            "--group",
            &ids[1],
            "--yes",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&uri) && stderr(&output).contains("does not match"),
        "{}",
        stderr(&output)
    );
    assert!(world.env.fake.puts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_prune_never_deletes_the_newest_backup_of_a_group() {
    let world = S3World::new(2).await;
    let ids = world.env.fake.group_ids();
    world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    for port in 1..4 {
        world.env.fake.change_config(
            &ids[0],
            "/processes/0/args2_6/net/port",
            json!(27017 + port),
        );
        world.ok(&["opsmanager", "backup", "--all-groups"]).await;
    }
    assert_eq!(world.keys_of(&ids[0]).await.len(), 4);
    let newest = world.key(&ids[0]);

    let out = world
        .ok(&["opsmanager", "backups", "prune", "--keep", "2"])
        .await;
    assert!(out.contains("deleted 2 backup(s)"), "{out}");
    let left = world.keys_of(&ids[0]).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&newest), "{left:?}");
    assert!(
        left.iter().any(|k| k.contains(&format!("{}/3-", ids[0]))),
        "{left:?}"
    );
    assert_eq!(world.keys_of(&ids[1]).await.len(), 1);

    let deleted = world
        .json(&["opsmanager", "backups", "prune", "--keep-days", "0"], 0)
        .await;
    assert_eq!(deleted.as_array().map(Vec::len), Some(1), "{deleted}");
    assert_eq!(world.keys_of(&ids[0]).await, vec![newest]);
    assert_eq!(
        world.keys_of(&ids[1]).await,
        vec![world.key(&ids[1])],
        "a group's only backup is kept however old"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_missing_bucket_is_named_and_exits_1() {
    let world = S3World::without_bucket(2).await;
    for args in [
        vec!["opsmanager", "backup", "--all-groups"],
        vec!["opsmanager", "backups", "list"],
        vec!["opsmanager", "backups", "verify"],
    ] {
        let output = world.run(&args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let text = format!("{}{}", stdout(&output), stderr(&output));
        assert!(
            text.contains(&format!("s3://{}/", world.bucket)) && text.contains("NoSuchBucket"),
            "{args:?}: {text}"
        );
        assert!(text.contains("backups.s3_bucket"), "{args:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_restore_and_diff_read_backups_by_uri_byte_for_byte() {
    let world = S3World::new(1).await;
    let group = world.env.fake.group_ids()[0].clone();
    world.ok(&["opsmanager", "backup", "--group", &group]).await;
    let key = world.key(&group);
    let original = world.get(&key).await;
    world
        .env
        .fake
        .change_config(&group, "/auth/usersWanted/0/roles/0/role", json!("root"));
    world.ok(&["opsmanager", "backup", "--group", &group]).await;
    let changed = world.uri(&world.key(&group));

    let changes = world
        .json(
            &["opsmanager", "backups", "diff", &world.uri(&key), &changed],
            0,
        )
        .await;
    assert!(
        changes.as_array().expect("array").contains(&json!({
            "op": "changed", "path": "/auth/usersWanted/0/roles/0/role",
            "from": "readWriteAnyDatabase", "to": "root"
        })),
        "{changes}"
    );
    let forced_local = world
        .ok(&[
            "opsmanager",
            "backups",
            "diff",
            &world.uri(&key),
            &changed,
            "--dir",
            "elsewhere",
        ])
        .await;
    assert!(
        forced_local.contains("/auth/usersWanted/0/roles/0/role"),
        "an s3:// backup is read with a local store too: {forced_local}"
    );

    let out = world
        .ok(&[
            "opsmanager",
            "backups",
            "restore",
            &world.uri(&key),
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
    let puts = world.env.fake.puts();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].1, original,
        "the PUT body is the S3 backup, byte for byte"
    );
    let mut live: Value = serde_json::from_slice(&world.env.fake.config(&group)).expect("json");
    let backup: Value = serde_json::from_slice(&original).expect("json");
    live["version"] = backup["version"].clone();
    assert_eq!(live, backup);

    let missing = world.uri(&format!("{PREFIX}{group}/1-{}.json", md5_hex(b"none")));
    let output = world
        .run(&[
            "opsmanager",
            "backups",
            "restore",
            &missing,
            "--group",
            &group,
            "--yes",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&missing) && stderr(&output).contains("NoSuchKey"),
        "{}",
        stderr(&output)
    );
    assert_eq!(world.env.fake.puts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_the_service_backs_up_lists_and_counts_backups_in_the_bucket() {
    let world = S3World::new(2).await;
    let ids = world.env.fake.group_ids();
    let mut vars: Vec<(String, String)> = world.vars();
    vars.extend([
        (
            "PINCHER_DATABASE__URL".into(),
            world.env.database.url.clone(),
        ),
        (
            "PINCHER_OPSMANAGER__BASE_URL".into(),
            world.env.fake.base_url.clone(),
        ),
        (
            "PINCHER_OPSMANAGER__PUBLIC_KEY".into(),
            crate::support::opsmanager::PUBLIC_KEY.into(),
        ),
        (
            "PINCHER_OPSMANAGER__PRIVATE_KEY".into(),
            crate::support::opsmanager::PRIVATE_KEY.into(),
        ),
    ]);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = world.env.database.dir.path();
    let token = create_token(dir, &vars);
    let server = ServerProcess::start(dir, &vars);
    let http = client(&token);
    let app = server.url();

    let response = http
        .post(format!("{app}/backups/opsmanager?all_groups=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 201);
    let run: Value = response.json().await.expect("json");
    let body = &run["output"];
    assert_eq!(body["completeness"], "complete", "{run}");
    for (index, group) in ids.iter().enumerate() {
        assert_eq!(body["results"][index]["path"], world.uri(&world.key(group)));
        assert_eq!(
            world.get(&world.key(group)).await,
            world.env.fake.config(group)
        );
    }

    let listed: Value = http
        .get(format!("{app}/backups/opsmanager?group={}", ids[1]))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["path"], world.uri(&world.key(&ids[1])));

    let metrics = http
        .get(format!("{app}/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for group in &ids {
        assert!(
            metrics.contains(&format!(
                "pincher_opsmanager_backups_stored{{group=\"{group}\"}} 1\n"
            )),
            "{metrics}"
        );
    }
    assert!(!metrics.contains(crate::s3_harness::SECRET_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_calls_name_the_expected_owner_and_writes_are_encrypted() {
    let world = S3World::new(2).await;
    let output = world
        .env
        .command(env!("CARGO_BIN_EXE_pincher"))
        .envs(world.vars())
        .env("PINCHER_BACKUPS__S3_EXPECTED_OWNER", "123456789012")
        .args(["opsmanager", "backup", "--all-groups", "--output", "json"])
        .output()
        .await
        .expect("run pincher");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bucket_calls: Vec<_> = world
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.uri.starts_with(&format!("/{}", world.bucket)))
        .collect();
    assert!(bucket_calls.len() >= 4, "{bucket_calls:?}");
    for call in &bucket_calls {
        assert_eq!(
            call.headers
                .get("x-amz-expected-bucket-owner")
                .and_then(|v| v.to_str().ok()),
            Some("123456789012"),
            "{} {}",
            call.method,
            call.uri
        );
    }
    let puts = world.puts();
    assert_eq!(puts.len(), 2);
    for put in &puts {
        assert_eq!(
            put.headers
                .get("x-amz-server-side-encryption")
                .and_then(|v| v.to_str().ok()),
            Some("AES256")
        );
    }
    let key = world.key(&world.env.fake.group_ids()[0]);
    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key(&key)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );

    let refused = world
        .env
        .command(env!("CARGO_BIN_EXE_pincher"))
        .envs(world.vars())
        .env("PINCHER_BACKUPS__S3_EXPECTED_OWNER", "12345")
        .args(["opsmanager", "backups", "list"])
        .output()
        .await
        .expect("run pincher");
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("backups.s3_expected_owner"));
}
