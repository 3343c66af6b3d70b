//! Running `pincher` as the management account of a test organization: CLI commands with
//! captured output, and `pincher serve` on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::database::{Backend, TestDatabase};
use crate::support::moto::MotoOrg;

/// A test organization, a fresh SQLite database and the `pincher` binary pointed at both.
pub struct Pincher {
    /// The organization on moto.
    pub org: MotoOrg,
    /// The database (and temp folder) of this test.
    pub database: TestDatabase,
    /// An AWS endpoint used instead of the moto server itself (a proxy in front of it).
    pub endpoint: Option<String>,
}

impl Pincher {
    /// A new organization with `members` member accounts.
    pub async fn new(members: usize) -> Self {
        Self::on(Backend::Sqlite, members).await
    }

    /// A new organization with `members` member accounts, and a database on `backend`.
    pub async fn on(backend: Backend, members: usize) -> Self {
        Self {
            org: MotoOrg::create(members).await,
            database: TestDatabase::create(backend).await,
            endpoint: None,
        }
    }

    /// Creates a token with `scope` ("read", "write" or "admin") and returns it.
    pub fn token(&self, scope: &str) -> String {
        let name = format!("aws-tests-{scope}-{}", uuid::Uuid::new_v4().simple());
        self.ok(&["tokens", "create", "--name", &name, "--scope", scope])
            .trim()
            .to_owned()
    }

    /// A `pincher` command with a clean environment.
    pub fn command(&self) -> Command {
        self.command_of(env!("CARGO_BIN_EXE_pincher"))
    }

    /// `program` (which runs `pincher` itself) with the environment of [`Pincher::command`].
    pub fn command_of(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("PINCHER_") || key.starts_with("AWS_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .current_dir(self.database.dir.path())
            .stdin(Stdio::null())
            .env("PINCHER_DATABASE__URL", &self.database.url)
            .envs(self.org.env());
        if let Some(endpoint) = &self.endpoint {
            command.env("PINCHER_AWS__ENDPOINT_URL", endpoint);
        }
        command
    }

    /// `pincher ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run pincher")
    }

    /// Runs and asserts exit 0, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "pincher {args:?} failed: {}",
            stderr(&output)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Registers the service `name` of `owner` with `tags` (`KEY=VALUE`).
    pub fn register(&self, name: &str, owner: &str, tags: &[&str]) {
        let mut args = vec!["services", "create", "--name", name, "--owner", owner];
        for tag in tags {
            args.extend(["--tag", tag]);
        }
        self.ok(&args);
    }

    /// Runs with `--output json`, asserts exit 0 and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }

    /// Starts `pincher serve --port 0` with a read token; the server stops when the guard
    /// drops.
    pub fn serve(&self) -> Server {
        self.serve_as("read")
    }

    /// Starts `pincher serve --port 0`, its client holding a token of `scope`.
    pub fn serve_as(&self, scope: &str) -> Server {
        Server::start(self.command(), self.token(scope))
    }
}

impl Server {
    /// Starts `command serve --port 0`, its client holding `token`.
    pub fn start(mut command: Command, token: String) -> Self {
        let mut child = command
            .args(["--log-format", "json", "serve", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pincher serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                    && log["message"] == "listening"
                {
                    let _ = tx.send(log["address"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("pincher serve reports its address");
        Server {
            child,
            base: format!("http://{address}"),
            client: crate::support::server::client(token.trim()),
        }
    }
}

/// A running `pincher serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
}

impl Server {
    /// `GET path` with an optional `Accept`.
    pub async fn get(&self, path: &str, accept: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.expect("send")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The per-target results of a change printed as JSON, as sorted `(target, result)` pairs.
pub fn results(out: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = out["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap_or_default().to_owned(),
                t["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// `(target, result)` pairs, sorted, to compare with [`results`].
pub fn pairs<S: AsRef<str>>(list: &[(S, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = list
        .iter()
        .map(|(id, result)| (id.as_ref().to_owned(), (*result).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

/// Runs `args` with `--output json` expecting exit `code`, and parses stdout.
pub fn json_with_code(pincher: &Pincher, args: &[&str], code: i32) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let output = pincher.run(&args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "pincher {args:?}: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
