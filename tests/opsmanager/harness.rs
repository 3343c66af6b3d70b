//! One test's world: a fake Ops Manager, a fresh database, a backup folder, and a way to run
//! `pincher` against them.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use md5::{Digest, Md5};
use pincher::config::{DatabaseSettings, DatabaseUrl};
use pincher::db::Db;

use crate::support::database::{Backend, TestDatabase};
use crate::support::opsmanager::{FakeOpsManager, PRIVATE_KEY, PUBLIC_KEY};

/// Lowercase hex MD5.
pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// Running `pincher` in a test world, with checks of the exit code.
pub(crate) trait RunPincher {
    /// `pincher ARGS…`.
    async fn run(&self, args: &[&str]) -> Output;

    /// Runs and asserts exit 0, returning stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "pincher {args:?}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// Runs with `--output json`, asserts exit `code`, and parses stdout.
    async fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let output = self.run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "pincher {args:?}: {}",
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }
}

impl RunPincher for Env {
    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }
}

/// A fake Ops Manager, a database and a backup folder.
pub struct Env {
    /// The fake.
    pub fake: FakeOpsManager,
    /// The database (its temp folder also holds the backups).
    pub database: TestDatabase,
    /// The backup folder.
    pub dir: PathBuf,
}

impl Env {
    /// A fake with `groups` groups and a fresh `backend` database.
    pub async fn new(backend: Backend, groups: usize) -> Self {
        let fake = FakeOpsManager::start(groups).await;
        let database = TestDatabase::create(backend).await;
        let dir = database.dir.path().join("backups");
        Self {
            fake,
            database,
            dir,
        }
    }

    /// `pincher ARGS…` configured for this world, with extra environment variables.
    pub async fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = self.command(env!("CARGO_BIN_EXE_pincher"));
        for (key, value) in vars {
            command.env(key, value);
        }
        command.args(args).output().await.expect("run pincher")
    }

    /// This world's settings, as `pincher`'s environment.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("PINCHER_DATABASE__URL", self.database.url.clone()),
            ("PINCHER_LOG", "warn".to_owned()),
            ("PINCHER_BACKUPS__DIR", self.dir.display().to_string()),
            ("PINCHER_OPSMANAGER__BASE_URL", self.fake.base_url.clone()),
            ("PINCHER_OPSMANAGER__PUBLIC_KEY", PUBLIC_KEY.to_owned()),
            ("PINCHER_OPSMANAGER__PRIVATE_KEY", PRIVATE_KEY.to_owned()),
            ("PINCHER_OPSMANAGER__RETRY_DELAY_MS", "10".to_owned()),
            ("PINCHER_OPSMANAGER__MAX_RETRIES", "2".to_owned()),
            ("PINCHER_OPSMANAGER__TIMEOUT_SECS", "10".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// `program` with this world's settings in its environment, in the test's folder.
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("PINCHER_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .current_dir(self.database.dir.path())
            .stdin(Stdio::null())
            .envs(self.vars());
        command
    }

    /// Names of the files in a group's backup folder (the lock file left out), sorted.
    pub fn files(&self, group: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join(group))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".lock")
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Where the fake's current configuration of `group` would be stored.
    pub fn expected_path(&self, group: &str) -> PathBuf {
        let bytes = self.fake.config(group);
        self.dir.join(group).join(format!(
            "{}-{}.json",
            self.fake.version(group),
            md5_hex(&bytes)
        ))
    }

    /// A pool on this world's database.
    pub fn db(&self) -> Db {
        Db::connect(&DatabaseSettings {
            url: DatabaseUrl::new(self.database.url.clone()),
            ..DatabaseSettings::default()
        })
        .expect("connect to the test database")
    }
}

/// Stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every temp file (`.pincher-*.tmp`) under `dir`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if entry.file_name().to_string_lossy().ends_with(".tmp") {
            found.push(path);
        }
    }
    found
}
