//! Running the binary: a clean environment, a temp working folder, captured output.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::database::{Backend, TestDatabase};

/// A `pincher` command with no inherited `PINCHER_*` settings, run in `dir`.
pub fn pincher(dir: &Path) -> Command {
    crate::support::server::pincher_command(dir)
}

/// A fresh database and a `pincher` command factory pointed at it.
pub struct CliEnv {
    /// The database (and temp folder) of this test.
    pub database: TestDatabase,
}

impl CliEnv {
    /// A new environment on `backend`.
    pub async fn new(backend: Backend) -> Self {
        Self {
            database: TestDatabase::create(backend).await,
        }
    }

    /// `pincher ARGS…` with the database configured through the environment.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = pincher(self.database.dir.path());
        command
            .env("PINCHER_DATABASE__URL", &self.database.url)
            .args(args);
        command.output().expect("run pincher")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "pincher {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs with `--output json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn completions_and_manual_pages_need_no_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef pincher"),
        ("fish", "complete -c pincher"),
    ] {
        let output = pincher(dir.path())
            // Broken settings do not matter to these commands.
            .env("PINCHER_SERVER__PORT", "eighty")
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains(marker) && script.contains("opsmanager"),
            "{shell}: {script}"
        );
    }
    let output = pincher(dir.path()).args(["man"]).output().expect("run");
    assert!(output.status.success());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH pincher"),
        "{page}"
    );
    assert!(page.contains("opsmanager"), "{page}");
    let pages = dir.path().join("man");
    let output = pincher(dir.path())
        .args(["man", "--out", pages.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(output.status.success());
    for name in ["pincher.1", "pincher-serve.1", "pincher-aws.1"] {
        assert!(
            pages.join(name).is_file(),
            "{name} in {:?}",
            std::fs::read_dir(&pages).map(|d| d.count())
        );
    }
}

#[test]
fn a_commands_own_flags_come_before_the_global_ones_in_its_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = pincher(dir.path())
        .args(["aws", "ec2", "report", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    let own = help.find("--state").expect("the command's --state flag");
    let global = help
        .find("Global options:")
        .expect("a Global options heading");
    assert!(own < global, "{help}");
    assert!(help[global..].contains("--config"), "{help}");
}
