//! A PostgreSQL server of the test's own (initdb in a temp dir, its own port), so a test can
//! stop and restart it without touching the machine's shared server.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private PostgreSQL cluster, stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// TCP port it listens on (127.0.0.1).
    pub port: u16,
    /// Extra server options (`-c name=value …`).
    options: String,
}

/// Runs `openssl ARGS…` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is needed to make the test CA (Debian openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes a CA (`{name}.crt`, `{name}.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=pincher test CA {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries are needed in /usr/lib/postgresql (Debian postgresql)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let mut command = if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    command.args(args).output().expect("run a PostgreSQL tool")
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PrivatePostgres {
    /// Creates and starts a cluster.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pincher-pg-")
            .tempdir()
            .expect("temp dir");
        if nix_is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let bin = postgres_bin();
        let data = dir.path().join("data");
        let output = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self {
            dir,
            bin,
            port: free_port(),
            options: String::new(),
        };
        cluster.resume();
        cluster
    }

    /// Creates and starts a cluster that accepts TLS connections only, with a certificate
    /// for `localhost` and 127.0.0.1 signed by a CA made here ([`Self::ca_file`]).
    pub fn start_tls_only() -> Self {
        let mut cluster = Self::start();
        cluster.stop();
        let dir = cluster.dir.path().to_owned();
        make_ca(&dir, "ca");
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("write the SAN extension");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.crt",
            ],
        );
        if nix_is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", "server.key", "server.crt"])
                .current_dir(&dir)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod the key");
        }
        let hba = dir.join("data").join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("write pg_hba.conf");
        cluster.options = format!(
            "-c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
            dir.display()
        );
        cluster.resume();
        cluster
    }

    /// The CA that signed a TLS cluster's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The cluster's folder, for files a test makes beside it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again).
    pub fn resume(&self) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=on {}",
            self.port,
            self.dir.path().display(),
            self.options
        );
        let log = self.dir.path().join("postgres.log");
        let output = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-o",
                &options,
                "-l",
                log.to_str().expect("path"),
                "-w",
                "start",
            ],
        );
        assert!(
            output.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the server (fast shutdown: connections are cut, committed data is kept).
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let output = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(
            output.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
