//! `pincher services …` and `pincher db …` on both backends.

use serde_json::json;

use crate::both_backends;
use crate::cli::{CliEnv, stderr};

both_backends! {
    async fn create_show_list_update_delete(backend) {
        let env = CliEnv::new(backend).await;
        let created = env.json(&[
            "services", "create", "--name", "billing", "--owner", "payments",
            "--tag", "service=billing", "--tag", "env=prod",
            "--link", "repo=https://git.example.com/billing",
            "--metadata", r#"{"tier": 1}"#,
        ]);
        assert_eq!(created["name"], "billing");
        assert_eq!(created["tags"], json!({"service": "billing", "env": "prod"}));
        assert_eq!(created["metadata"], json!({"tier": 1}));

        let id = created["id"].as_str().expect("id");
        let shown = env.json(&["services", "show", id]);
        assert_eq!(shown, created);

        env.ok(&["services", "create", "--name", "ledger", "--owner", "finance", "--tag", "env=prod"]);
        let listed = env.json(&["services", "list", "--tag", "env=prod"]);
        let names: Vec<_> = listed.as_array().expect("array").iter().map(|s| s["name"].clone()).collect();
        assert_eq!(names, vec![json!("billing"), json!("ledger")]);
        let listed = env.json(&["services", "list", "--owner", "finance"]);
        assert_eq!(listed.as_array().map(Vec::len), Some(1));

        let updated = env.json(&[
            "services", "update", "billing", "--owner", "finance",
            "--tag", "team=ledger", "--remove-tag", "env",
        ]);
        assert_eq!(updated["owner"], "finance");
        assert_eq!(updated["tags"], json!({"service": "billing", "team": "ledger"}));
        assert_eq!(updated["links"], created["links"]);

        let table = env.ok(&["services", "list"]);
        assert!(table.contains("billing") && table.contains("ledger") && table.contains("finance"), "{table}");

        let out = env.ok(&["services", "delete", "billing"]);
        assert!(out.contains("deleted service billing"), "{out}");
        let missing = env.run(&["services", "show", "billing"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(stderr(&missing).contains("not found"), "{}", stderr(&missing));
    }

    async fn create_from_a_file_and_patch_from_stdin_like_files(backend) {
        let env = CliEnv::new(backend).await;
        let file = env.database.dir.path().join("svc.json");
        std::fs::write(&file, json!({"name": "search", "owner": "discovery", "description": "finds"}).to_string()).expect("write");
        let created = env.json(&["services", "create", "--file", file.to_str().expect("path")]);
        assert_eq!(created["description"], "finds");
        let patch = env.database.dir.path().join("patch.json");
        std::fs::write(&patch, r#"{"description": null, "metadata": {"a": [1]}}"#).expect("write");
        let patched = env.json(&["services", "update", "search", "--patch", patch.to_str().expect("path")]);
        assert_eq!(patched["description"], "");
        assert_eq!(patched["metadata"], json!({"a": [1]}));
    }

    async fn invalid_input_fails_once_naming_the_field(backend) {
        let env = CliEnv::new(backend).await;
        let output = env.run(&["services", "create", "--name", "Bad Name", "--owner", "x", "--link", "repo=nope"]);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.contains("name:") && err.contains("links.repo"), "{err}");
        assert_eq!(err.matches("error:").count(), 1, "{err}");
        assert!(output.stdout.is_empty());

        env.ok(&["services", "create", "--name", "dup", "--owner", "x"]);
        let output = env.run(&["services", "create", "--name", "dup", "--owner", "y"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("already exists"), "{}", stderr(&output));
        assert_eq!(env.json(&["services", "list"]).as_array().map(Vec::len), Some(1));
    }

    async fn db_status_lists_pending_then_applied_migrations(backend) {
        let env = CliEnv::new(backend).await;
        let status = env.json(&["db", "status"]);
        let rows = status.as_array().expect("array");
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|m| m["applied"] == false), "{status}");
        assert_eq!(rows[0]["version"], 1);
        assert_eq!(rows[0]["description"], "services");

        let out = env.ok(&["db", "migrate"]);
        assert!(out.contains(&format!("applied {} migration(s)", rows.len())), "{out}");
        let status = env.json(&["db", "status"]);
        assert!(status.as_array().expect("array").iter().all(|m| m["applied"] == true), "{status}");
        let out = env.ok(&["db", "migrate"]);
        assert!(out.contains("applied 0 migration(s)"), "{out}");
        let table = env.ok(&["db", "status"]);
        assert!(table.contains("applied") && table.contains("services"), "{table}");
    }
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let env = CliEnv::new(crate::support::database::Backend::Sqlite).await;
    assert_eq!(env.run(&["services", "frobnicate"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["services", "create", "--tag", "novalue"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_with_its_redacted_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = crate::cli::pincher(dir.path())
        .env(
            "PINCHER_DATABASE__URL",
            "postgres://app:s3cret-pw@127.0.0.1:1/pincher",
        )
        .env("PINCHER_DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
        .args(["services", "list"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[tokio::test]
async fn status_exits_0_when_healthy_and_1_when_the_database_is_down() {
    let env = CliEnv::new(crate::support::database::Backend::Sqlite).await;
    let health = env.json(&["status"]);
    assert_eq!(health["status"], "pass");
    assert_eq!(
        health["checks"]["database:responseTime"][0]["status"],
        "pass"
    );
    let table = env.ok(&["status"]);
    assert!(
        table.contains("database:responseTime") && table.contains("pass"),
        "{table}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let output = crate::cli::pincher(dir.path())
        .env(
            "PINCHER_DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/pincher",
        )
        .env("PINCHER_DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
        .args(["status", "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let health: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(health["status"], "fail");
    assert_eq!(
        health["checks"]["database:responseTime"][0]["status"],
        "fail"
    );
}

both_backends! {
    async fn tokens_are_created_once_listed_without_secrets_and_revoked(backend) {
        let env = CliEnv::new(backend).await;
        let output = env.run(&["tokens", "create", "--name", "deploy-bot", "--scope", "write"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let secret = String::from_utf8(output.stdout.clone()).expect("utf-8").trim().to_owned();
        assert!(secret.starts_with("pincher_") && secret.len() > 40, "{secret}");
        assert!(stderr(&output).contains("shown only now"));

        let listed = env.json(&["tokens", "list"]);
        assert_eq!(listed[0]["name"], "deploy-bot");
        assert_eq!(listed[0]["scope"], "write");
        assert_eq!(listed[0]["revoked_at"], serde_json::Value::Null);
        let text = env.ok(&["tokens", "list"]);
        assert!(!text.contains(&secret) && text.contains("deploy-bot"), "{text}");

        let duplicate = env.run(&["tokens", "create", "--name", "deploy-bot", "--scope", "read"]);
        assert_eq!(duplicate.status.code(), Some(1));
        assert!(stderr(&duplicate).contains("already exists"));
        assert_eq!(env.run(&["tokens", "create", "--name", "x", "--scope", "root"]).status.code(), Some(2));

        let output = env.run(&["tokens", "create", "--name", "temp-bot", "--scope", "read", "--expires-in-days", "7"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let listed = env.json(&["tokens", "list"]);
        let expires = listed[1]["expires_at"].as_str().expect("expires_at").to_owned();
        let in_a_week = time::OffsetDateTime::now_utc() + time::Duration::days(7);
        assert!(expires.starts_with(&in_a_week.date().to_string()), "{expires}");
        assert!(listed[1]["last_used_at"].is_null());
        let table = env.ok(&["tokens", "list"]);
        assert!(table.contains("expires") && table.contains("last used"), "{table}");
        assert_eq!(env.run(&["tokens", "create", "--name", "y", "--scope", "read", "--expires-in-days", "0"]).status.code(), Some(2));

        assert!(env.ok(&["tokens", "revoke", "deploy-bot"]).contains("revoked"));
        assert!(env.json(&["tokens", "list"])[0]["revoked_at"].is_string());
        assert_eq!(env.run(&["tokens", "revoke", "nope"]).status.code(), Some(1));
    }
}

#[test]
fn serve_refuses_disabled_auth_on_a_public_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = crate::cli::pincher(dir.path())
        .env("PINCHER_AUTH__MODE", "disabled")
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("auth.mode = disabled"),
        "{}",
        stderr(&output)
    );
}

both_backends! {
    async fn hostile_input_is_refused_with_the_limit_named(backend) {
        let env = CliEnv::new(backend).await;
        let mut args = vec!["services".to_owned(), "list".to_owned()];
        for i in 0..21 {
            args.extend(["--tag".to_owned(), format!("k{i}=v")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let refused = env.run(&args);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("limits.tag_filters"), "{}", stderr(&refused));

        let metadata = json!({"blob": "x".repeat(70 * 1024)}).to_string();
        let refused = env.run(&["services", "create", "--name", "big", "--owner", "t", "--metadata", &metadata]);
        assert_ne!(refused.status.code(), Some(0));
        assert!(stderr(&refused).contains("limits.metadata_bytes"), "{}", stderr(&refused));

        let refused = env.run(&["aws", "ce", "report", "--start", "0000-01-02", "--end", "9999-12-31"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("limits.earliest_date"), "{}", stderr(&refused));

        let refused = env.run(&["services", "report", "big", "--start", "1999-01-01", "--end", "1999-02-01"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("limits.earliest_date"), "{}", stderr(&refused));
    }
}
