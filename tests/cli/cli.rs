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
