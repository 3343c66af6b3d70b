//! TLS to PostgreSQL: a private server that refuses plain connections, reached with
//! `sslmode=require` and with `verify-full` against a CA the test makes; a certificate from
//! another CA is refused with its reason said once.

use std::process::Output;

use crate::support::private_postgres::{PrivatePostgres, make_ca};

fn pincher(url: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pincher"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PINCHER_") {
            command.env_remove(key);
        }
    }
    command
        .env("PINCHER_DATABASE__URL", url)
        .env("PINCHER_DATABASE__ACQUIRE_TIMEOUT_SECS", "3")
        .args(args)
        .output()
        .expect("run pincher")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn sslmode_require_and_verify_full_work_and_a_foreign_ca_is_refused_once() {
    let server = PrivatePostgres::start_tls_only();
    let port = server.port;
    let ca = server.ca_file();
    let ca = ca.to_str().expect("path");

    let plain = pincher(
        &format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
        &["db", "migrate"],
    );
    assert_ne!(
        plain.status.code(),
        Some(0),
        "the server refuses plain connections"
    );

    let required = pincher(
        &format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require"),
        &["db", "migrate"],
    );
    assert_eq!(required.status.code(), Some(0), "{}", stderr(&required));

    let verified = pincher(
        &format!(
            "postgres://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
        ),
        &["services", "list", "--output", "json"],
    );
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "[]");

    make_ca(server.dir(), "other");
    let other = server.dir().join("other.crt");
    let foreign = pincher(
        &format!(
            "postgres://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={}",
            other.display()
        ),
        &["db", "migrate"],
    );
    let text = stderr(&foreign);
    assert_eq!(foreign.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    // Each cause once: no phrase of the message repeats down the chain.
    let parts: Vec<&str> = text.trim().split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} repeats in: {text}"
        );
    }
}

#[tokio::test]
async fn the_machines_server_is_reached_with_sslmode_require() {
    let database =
        crate::support::database::TestDatabase::create(crate::support::database::Backend::Postgres)
            .await;
    let url = if database.url.contains('?') {
        format!("{}&sslmode=require", database.url)
    } else {
        format!("{}?sslmode=require", database.url)
    };
    let output = tokio::task::spawn_blocking(move || pincher(&url, &["db", "migrate"]))
        .await
        .expect("join");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // The machine's server presents Debian's snakeoil certificate for `localhost`, which
    // the system trust folder holds. `sslrootcert` names the CA to trust: a CA of our own
    // must not let that certificate pass `verify-full`.
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path(), "mine");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        database.url.replace("127.0.0.1", "localhost"),
        dir.path().join("mine.crt").display()
    );
    let output = tokio::task::spawn_blocking(move || pincher(&url, &["db", "status"]))
        .await
        .expect("join");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).to_lowercase().contains("certificate"),
        "{}",
        stderr(&output)
    );
}
