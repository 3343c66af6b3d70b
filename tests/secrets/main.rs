//! Secrets never leak: a scenario that uses every secret pincher holds (the database password,
//! AWS keys, the Ops Manager private key, the Chef client key, API and metrics tokens), then searches
//! every log line, every response (headers and bodies, errors included), `/metrics`, `/status`,
//! every exported span and `config show` for them.

#[path = "../support/mod.rs"]
mod support;

use std::process::Command;

use support::chef::ChefPeer;
use support::database::{Backend, TestDatabase};
use support::moto::MotoOrg;
use support::opsmanager::{FakeOpsManager, PRIVATE_KEY, PUBLIC_KEY};
use support::otlp::Receiver;
use support::server::{ServerProcess, create_token, pincher_command};

const DB_PASSWORD: &str = "db-Pa55word-6d1f";
const METRICS_TOKEN: &str = "metrics-token-9b3e27";
const OTLP_TOKEN: &str = "otlp-token-77c1d4";

fn with_password(url: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{DB_PASSWORD}@"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_metrics_status_config_or_errors() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let database_url = with_password(&database.url);
    let opsmanager = FakeOpsManager::start(2).await;
    let chef = ChefPeer::from_env();
    let chef_pem = std::fs::read_to_string(&chef.key).expect("the Chef key");
    let work = tempfile::tempdir().expect("tempdir");
    let backups = work.path().join("backups");
    let collector = Receiver::start().await;

    let mut env: Vec<(String, String)> = vec![
        ("PINCHER_DATABASE__URL".into(), database_url.clone()),
        ("PINCHER_LOG".into(), "debug".into()),
        ("PINCHER_METRICS__TOKEN".into(), METRICS_TOKEN.into()),
        ("PINCHER_BACKUPS__DIR".into(), backups.display().to_string()),
        (
            "PINCHER_OPSMANAGER__BASE_URL".into(),
            opsmanager.base_url.clone(),
        ),
        ("PINCHER_OPSMANAGER__PUBLIC_KEY".into(), PUBLIC_KEY.into()),
        ("PINCHER_OPSMANAGER__PRIVATE_KEY".into(), PRIVATE_KEY.into()),
        (
            "PINCHER_OPSMANAGER__GROUP_IDS".into(),
            opsmanager.group_ids().join(","),
        ),
        ("PINCHER_STATUS__CACHE_TTL_MS".into(), "0".into()),
        // Traces are one more way out: every span the scenario makes, SQL included.
        (
            "PINCHER_TELEMETRY__OTLP_ENDPOINT".into(),
            collector.url.clone(),
        ),
        (
            "PINCHER_TELEMETRY__LEVEL".into(),
            "info,pincher=debug,sqlx::query=debug".into(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS".into(),
            format!("authorization=Bearer {OTLP_TOKEN}"),
        ),
    ];
    env.extend(chef.settings_env());
    let aws = MotoOrg::create(1).await;
    let aws_env = aws.env();
    env.extend(aws_env.iter().cloned());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let token = create_token(work.path(), &env_refs);
    let mut server = ServerProcess::start(work.path(), &env_refs);
    let base = server.url();
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    let requests: Vec<(
        reqwest::Method,
        &str,
        Option<String>,
        Option<serde_json::Value>,
    )> = vec![
        (reqwest::Method::GET, "/", None, None),
        (reqwest::Method::GET, "/status", None, None),
        (reqwest::Method::GET, "/status/ready", None, None),
        (reqwest::Method::GET, "/metrics", None, None),
        (
            reqwest::Method::GET,
            "/metrics",
            Some(METRICS_TOKEN.into()),
            None,
        ),
        (reqwest::Method::GET, "/services", None, None),
        (
            reqwest::Method::GET,
            "/services",
            Some("pincher_guess".into()),
            None,
        ),
        (reqwest::Method::GET, "/services", Some(token.clone()), None),
        (
            reqwest::Method::POST,
            "/services",
            Some(token.clone()),
            Some(serde_json::json!({"name": "Bad Name"})),
        ),
        (
            reqwest::Method::POST,
            "/services",
            Some(token.clone()),
            Some(serde_json::json!({"name": "ok", "owner": "t"})),
        ),
        (
            reqwest::Method::POST,
            "/backups/opsmanager?all_groups=true",
            Some(token.clone()),
            None,
        ),
        (
            reqwest::Method::GET,
            "/backups/opsmanager",
            Some(token.clone()),
            None,
        ),
        (
            reqwest::Method::POST,
            "/tokens",
            Some(token.clone()),
            Some(serde_json::json!({"name": "second", "scope": "read"})),
        ),
        (reqwest::Method::GET, "/tokens", Some(token.clone()), None),
        (
            reqwest::Method::GET,
            "/reports/aws/ec2?all_accounts=true",
            Some(token.clone()),
            None,
        ),
        (
            reqwest::Method::GET,
            "/reports/aws/ec2?regions=nowhere-1",
            Some(token.clone()),
            None,
        ),
        (
            reqwest::Method::GET,
            "/reports/chef/reconcile",
            Some(token.clone()),
            None,
        ),
        (
            reqwest::Method::GET,
            "/metrics",
            Some(METRICS_TOKEN.into()),
            None,
        ),
    ];
    let mut created_tokens = vec![token.clone()];
    for (method, path, bearer, body) in requests {
        let mut request = http.request(method.clone(), format!("{base}{path}"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.expect("text");
        if path == "/tokens" && method == reqwest::Method::POST {
            let created: serde_json::Value = serde_json::from_str(&text).expect("json");
            created_tokens.push(created["token"].as_str().expect("token").to_owned());
        } else {
            seen.push(format!("{method} {path}: {headers} {text}"));
        }
    }
    assert!(
        seen.iter()
            .any(|s| s.contains("opsmanager:responseTime") && s.contains("chef:responseTime")),
        "the status checks used the Ops Manager and Chef credentials"
    );
    assert!(
        seen.iter().any(|s| s.contains("\"stored\"")),
        "a backup used the Ops Manager key"
    );

    for args in [
        vec!["config", "show"],
        vec!["config", "show", "--output", "json"],
        vec!["status", "--output", "json"],
        vec!["chef", "status"],
        vec!["opsmanager", "backup", "--all-groups"],
        vec!["tokens", "list"],
        vec!["aws", "ec2", "report", "--all-accounts", "--output", "json"],
        vec!["aws", "organizations", "report", "--output", "json"],
    ] {
        let output = pincher_command(work.path())
            .envs(env_refs.iter().copied())
            .args(&args)
            .output()
            .expect("run pincher");
        seen.push(format!(
            "pincher {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let wrong_key = Command::new(env!("CARGO_BIN_EXE_pincher"))
        .current_dir(work.path())
        .envs(env_refs.iter().copied())
        .env("PINCHER_OPSMANAGER__PRIVATE_KEY", "wrong-but-secret-5e8a")
        .args(["opsmanager", "backup", "--all-groups"])
        .output()
        .expect("run pincher");
    assert_eq!(wrong_key.status.code(), Some(1));
    seen.push(String::from_utf8_lossy(&wrong_key.stderr).into_owned());

    let logs: Vec<String> = server
        .lines
        .lock()
        .expect("lock")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(logs.len() > 15, "the server logged the scenario");
    seen.extend(logs);
    // A clean stop sends the spans still queued.
    server.sigterm();
    let status =
        tokio::task::block_in_place(|| server.wait_exit(std::time::Duration::from_secs(30)));
    assert!(status.success(), "{status:?}");
    drop(server);
    let spans = collector.spans();
    assert!(
        spans.len() > 20 && spans.iter().any(|e| e.span.name.starts_with("db ")),
        "the scenario's spans, SQL included, were exported"
    );
    seen.extend(spans.iter().map(|e| format!("span {:?}", e.span)));

    let mut secrets: Vec<String> = vec![
        DB_PASSWORD.into(),
        METRICS_TOKEN.into(),
        OTLP_TOKEN.into(),
        PRIVATE_KEY.into(),
        "wrong-but-secret-5e8a".into(),
    ];
    secrets.extend(created_tokens);
    for (key, value) in &aws_env {
        if key == "AWS_SECRET_ACCESS_KEY" || key == "AWS_SESSION_TOKEN" {
            secrets.push(value.clone());
        }
    }
    secrets.extend(
        chef_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_owned),
    );
    for text in &seen {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
    assert!(seen.len() > 20);
}
