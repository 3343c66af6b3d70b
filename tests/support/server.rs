//! `pincher serve` as a child process: started on a free port with JSON logs, its address read
//! from the "listening" log line, every log line kept for assertions.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `pincher` command with no inherited `PINCHER_*` settings, run in `dir`.
pub fn pincher_command(dir: &Path) -> Command {
    command_for(Path::new(env!("CARGO_BIN_EXE_pincher")), dir)
}

/// `program` (a pincher binary, such as a copy of it) with no inherited `PINCHER_*` settings,
/// run in `dir`.
fn command_for(program: &Path, dir: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("PINCHER_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.current_dir(dir).stdin(Stdio::null());
    command
}

/// A running `pincher serve`.
pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on.
    pub address: String,
    /// Every log line so far, parsed.
    pub lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl ServerProcess {
    /// Starts `pincher serve --port 0` in `dir` with extra environment variables.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(dir, env, &["serve", "--port", "0"], "listening")
    }

    /// Starts `pincher serve --port 0 ARGS…` in `dir` with extra environment variables.
    pub fn start_with(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut all = vec!["serve", "--port", "0"];
        all.extend_from_slice(args);
        Self::spawn(dir, env, &all, "listening")
    }

    /// Starts `program` (a copy of the pincher binary) as `serve --port 0` in `dir` with
    /// extra environment variables.
    pub fn start_program(program: &Path, dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn_program(program, dir, env, &["serve", "--port", "0"], "listening")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `pincher daemon` in `dir` with extra environment variables; `address` is empty.
    pub fn daemon(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(dir, env, &["daemon"], "scheduler started")
    }

    /// Starts `pincher ARGS…` with JSON logs and waits for the log line `ready`.
    fn spawn(dir: &Path, env: &[(&str, &str)], args: &[&str], ready: &'static str) -> Self {
        let program = Path::new(env!("CARGO_BIN_EXE_pincher"));
        Self::spawn_program(program, dir, env, args, ready)
    }

    /// Starts `program ARGS…` with JSON logs and waits for the log line `ready`.
    fn spawn_program(
        program: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        ready: &'static str,
    ) -> Self {
        let mut child = command_for(program, dir)
            .envs(env.iter().copied())
            .args(["--log-format", "json"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pincher serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let log: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
                if log["message"] == ready {
                    let _ = tx.send(log["address"].as_str().unwrap_or_default().to_owned());
                }
                collected.lock().expect("lock").push(log);
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("pincher {args:?} did not log {ready:?}: {e}"));
        Self {
            child,
            address,
            lines,
        }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Kills the process outright (SIGKILL): it gets no chance to clean up.
    pub fn sigkill(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "pincher did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an admin token with the CLI against the database `env` configures, in `dir`.
pub fn create_token(dir: &Path, env: &[(&str, &str)]) -> String {
    let output = pincher_command(dir)
        .envs(env.iter().copied())
        .args([
            "tokens",
            "create",
            "--name",
            &format!("test-{}", uuid::Uuid::new_v4().simple()),
            "--scope",
            "admin",
        ])
        .output()
        .expect("run pincher tokens create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A client sending `token`.
pub fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .build()
        .expect("client")
}
