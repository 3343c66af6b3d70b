//! `pincher config show`, settings layering and validation at start.

use std::process::Stdio;

use crate::cli::{pincher, stderr};

#[test]
fn config_show_layers_file_dotenv_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("pincher.toml"),
        "[server]\nport = 7000\nhost = \"0.0.0.0\"\n[log]\nlevel = \"debug\"\n[aws]\nregion = \"eu-west-1\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join(".env"),
        "PINCHER_SERVER__PORT=7001\nPINCHER_AWS__REGION=us-east-2\n",
    )
    .expect("write");
    let output = pincher(dir.path())
        .env("PINCHER_AWS__REGION", "ap-south-1")
        .args([
            "--config",
            "pincher.toml",
            "config",
            "show",
            "--output",
            "json",
        ])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(shown["server"]["host"], "0.0.0.0");
    assert_eq!(shown["server"]["port"], 7001);
    assert_eq!(shown["log"]["level"], "debug");
    assert_eq!(shown["aws"]["region"], "ap-south-1");
    assert_eq!(shown["database"]["url"], "sqlite://pincher.db");
}

#[test]
fn config_show_redacts_every_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = pincher(dir.path())
        .env(
            "PINCHER_DATABASE__URL",
            "postgres://app:db-pass-123@db.internal/pincher",
        )
        .env("PINCHER_OPSMANAGER__BASE_URL", "https://om.example.com")
        .env("PINCHER_OPSMANAGER__PUBLIC_KEY", "abcdefgh")
        .env("PINCHER_OPSMANAGER__PRIVATE_KEY", "om-private-456")
        .args(["config", "show"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        text.contains("db.internal") && text.contains("[redacted]"),
        "{text}"
    );
    assert!(
        !text.contains("db-pass-123") && !text.contains("om-private-456"),
        "{text}"
    );

    // Passwords in the query string and in the other URL settings are masked too.
    let output = pincher(dir.path())
        .env(
            "PINCHER_DATABASE__URL",
            "postgres://app@db.internal/pincher?password=db-query-789&sslmode=require",
        )
        .env(
            "PINCHER_OPSMANAGER__BASE_URL",
            "https://ops:om-url-pass@om.example.com/?apiKey=om-query-key",
        )
        .env("PINCHER_OPSMANAGER__PUBLIC_KEY", "abcdefgh")
        .env("PINCHER_OPSMANAGER__PRIVATE_KEY", "om-private-456")
        .env(
            "PINCHER_AWS__ENDPOINT_URL",
            "https://vpce.example.com/?token=aws-query-tok",
        )
        .args(["config", "show"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    for secret in [
        "db-query-789",
        "om-url-pass",
        "om-query-key",
        "aws-query-tok",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    assert!(
        text.contains("sslmode=require") && text.contains("om.example.com"),
        "{text}"
    );
}

#[test]
fn bad_settings_exit_1_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (key, value, named) in [
        ("PINCHER_SERVER__PORT", "eighty", "server.port"),
        ("PINCHER_DATABASE__URL", "mysql://x", "database.url"),
        ("PINCHER_LOG__FORMAT", "xml", "log.format"),
        ("PINCHER_CHEF__SIGN_VERSION", "2.0", "chef.sign_version"),
        (
            "PINCHER_TELEMETRY__SAMPLE_RATIO",
            "1.5",
            "telemetry.sample_ratio",
        ),
        (
            "PINCHER_TELEMETRY__OTLP_ENDPOINT",
            "http://user:pw@collector:4318",
            "telemetry.otlp_endpoint",
        ),
        ("PINCHER_TELEMETRY__LEVEL", "info,=[", "telemetry.level"),
        (
            "PINCHER_AWS__PRICES_FILE",
            "/nonexistent/prices.toml",
            "aws.prices_file",
        ),
    ] {
        let output = pincher(dir.path())
            .env(key, value)
            .args(["config", "show"])
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{key}");
        let err = stderr(&output);
        assert!(err.contains(named), "{key}: {err}");
        assert!(output.stdout.is_empty());
    }
    let output = pincher(dir.path())
        .args(["--config", "missing.toml", "config", "show"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("missing.toml"));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = pincher(dir.path())
        .args(["config", "show"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error"), "{}", stderr(&output));
}

/// Every setting the annotated `.env` shows is one pincher takes, with a value it accepts.
#[test]
fn every_setting_in_the_annotated_env_file_is_accepted() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env")).expect("read .env");
    let mut vars = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("# ").and_then(|l| l.split_once('=')) else {
            continue;
        };
        if !key.starts_with("PINCHER_")
            || !key.contains("__")
            || value.is_empty()
            || value.contains(' ')
        {
            continue;
        }
        vars.entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    assert!(
        vars.len() > 40,
        "only {} settings found in .env",
        vars.len()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let output = pincher(dir.path())
        .envs(&vars)
        .env("PINCHER_OPSMANAGER__PRIVATE_KEY", "example-private-key")
        // The example's file exists on a server, not here; the shipped table stands in.
        .env(
            "PINCHER_AWS__PRICES_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/plugins/aws/prices.toml"),
        )
        .args(["config", "show", "--output", "json"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
}

/// An AWS endpoint that accepts connections and never answers cannot hang a report (a cron
/// run): each attempt and the whole call end at their timeouts.
#[test]
fn an_aws_endpoint_that_never_answers_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("address");
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let output = pincher(dir.path())
        .env("PINCHER_AWS__ENDPOINT_URL", format!("http://{address}"))
        .env("PINCHER_AWS__REGION", "us-east-1")
        .env("PINCHER_AWS__ATTEMPT_TIMEOUT_SECS", "1")
        .env("PINCHER_AWS__OPERATION_TIMEOUT_SECS", "3")
        .env("AWS_ACCESS_KEY_ID", "AKIATESTTIMEOUT")
        .env("AWS_SECRET_ACCESS_KEY", "timeout-test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .args(["aws", "ec2", "report", "--output", "json"])
        .output()
        .expect("run");
    let took = started.elapsed();
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert!(
        stderr(&output).to_lowercase().contains("timeout")
            || stderr(&output).to_lowercase().contains("timed out"),
        "{}",
        stderr(&output)
    );
}

/// With `log.file`, the log goes to a dated file in that folder (created), as JSON lines, and
/// nothing to stderr; every line queued is written by the time the process exits.
#[test]
fn the_log_can_go_to_a_rotated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let child = pincher(dir.path())
        .env("PINCHER_LOG__FILE", logs.join("pincher.log"))
        .env("PINCHER_LOG__KEEP_FILES", "3")
        .env("PINCHER_LOG", "info")
        .args(["serve", "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pincher serve");
    let started = std::time::Instant::now();
    let file = loop {
        let found = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read_to_string(p).is_ok_and(|text| text.contains("listening")));
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no log file with the start line in {logs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let today = time::OffsetDateTime::now_utc().date();
    assert!(
        name.starts_with("pincher.log.") && name.contains(&today.year().to_string()),
        "{name}"
    );
    let text = std::fs::read_to_string(&file).expect("read the log");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
    }
    assert!(
        text.contains("\"stopped\""),
        "the last line is flushed at exit: {text}"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
