//! The typed settings tree and how it is loaded and validated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use super::logging::LogFormat;
use super::secret::{DatabaseUrl, redact_secret, redact_url_setting};

/// Settings outside any section, as their environment variables name them after the prefix.
const TOP_LEVEL_SETTINGS: &[&str] = &["TEMPLATES_DIR"];

/// Prefix of every environment variable that sets a setting.
pub const ENV_PREFIX: &str = "PINCHER";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The TOML file named by `--config` does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// The `.env` file could not be parsed.
    #[error("cannot read .env: {0}")]
    DotEnv(String),
    /// A source could not be read or a value has the wrong type.
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    /// A value has the right type but is not acceptable.
    #[error("invalid setting `{key}`: {message}")]
    Invalid {
        /// Dotted path of the setting, e.g. `server.port`.
        key: &'static str,
        /// What was wrong and the expected form.
        message: String,
    },
}

/// Every pincher setting. Each section has defaults, so an empty configuration is valid.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The HTTP service.
    pub server: ServerSettings,
    /// The registry database.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// Traces exported to an OpenTelemetry collector.
    pub telemetry: TelemetrySettings,
    /// API authentication.
    pub auth: AuthSettings,
    /// AWS access for reports.
    pub aws: AwsSettings,
    /// The savings report's thresholds.
    pub savings: SavingsSettings,
    /// MongoDB Ops Manager access for backups.
    pub opsmanager: OpsManagerSettings,
    /// Chef server access.
    pub chef: ChefSettings,
    /// Where backups are stored.
    pub backups: BackupSettings,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// The health-check endpoints.
    pub status: StatusSettings,
    /// How actions run.
    pub actions: ActionSettings,
    /// The rules scheduler.
    pub scheduler: SchedulerSettings,
    /// The dashboard at `/`.
    pub dashboard: DashboardSettings,
    /// The largest inputs accepted.
    pub limits: super::Limits,
    /// Folder of report templates overriding the embedded ones by file name
    /// (`report.html.j2`, `report.md.j2`).
    #[schema(value_type = Option<String>)]
    pub templates_dir: Option<PathBuf>,
}

/// `[server]`: the HTTP listener and its limits.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind. Loopback by default; containers set `0.0.0.0`.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Longest a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Longest in-flight requests may take to finish after SIGTERM/SIGINT.
    pub drain_timeout_secs: u64,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Largest accepted total size of the request headers, in bytes (431 above it).
    pub header_limit_bytes: usize,
    /// Most requests served at once; more are refused at once with 503 and `Retry-After`
    /// rather than queued without bound. The probes (`/status/live`, `/status/ready`) are
    /// not counted, so a flood cannot make a healthy replica fail them.
    pub max_concurrent_requests: usize,
    /// Longest a client may take to send a request's headers, counted from when the server
    /// waits for them (so also how long an HTTP/1 keep-alive connection may sit idle).
    pub header_read_timeout_secs: u64,
    /// A connection with no bytes read or written for this long is closed once its requests
    /// are answered (HTTP/2 included).
    pub idle_timeout_secs: u64,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Once requests have been served and none has come for this long, serve gives the
    /// kernel back the pages of its code once more, as it does when it starts listening, so
    /// that code only the first requests ran leaves memory; 0 turns both off.
    pub page_out_after_quiet_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            request_timeout_secs: 30,
            drain_timeout_secs: 30,
            body_limit_bytes: 1024 * 1024,
            header_limit_bytes: 16 * 1024,
            max_concurrent_requests: 512,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            page_out_after_quiet_secs: 10,
        }
    }
}

/// `[database]`: SQLite by default, PostgreSQL for several replicas.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://FILE` (created on first use) or `postgres://USER:PASS@HOST:PORT/DB`.
    #[schema(value_type = String)]
    pub url: DatabaseUrl,
    /// Largest number of pooled connections. On a SQLite file, up to this many connections
    /// (opened on demand, refusing writes) serve reads, and writes take turns on one more.
    pub max_connections: u32,
    /// Longest a request waits for a pooled connection before failing with 503.
    pub acquire_timeout_secs: u64,
    /// Longest SQLite waits for a lock held by another process.
    pub busy_timeout_ms: u64,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// PostgreSQL: longest one statement may run before the server cancels it
    /// (`statement_timeout`).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::new("sqlite://pincher.db"),
            max_connections: 10,
            acquire_timeout_secs: 5,
            busy_timeout_ms: 5000,
            migrate_on_start: true,
            statement_timeout_ms: 30_000,
        }
    }
}

/// `[log]`: level and format of the log lines written to stderr.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `pincher=debug,sqlx=warn`; `PINCHER_LOG` and
    /// `RUST_LOG` take precedence.
    pub level: String,
    /// `auto` (human on a terminal, JSON otherwise), `json` or `pretty`.
    #[schema(inline)]
    pub format: LogFormat,
    /// Write the log to this file instead of stderr, for hosts without a log collector
    /// (the folder is created; rotated files get a date suffix).
    #[schema(value_type = Option<String>)]
    pub file: Option<PathBuf>,
    /// How often the log file rotates: `daily`, `hourly` or `never`.
    #[schema(inline)]
    pub rotation: super::logging::LogRotation,
    /// Rotated log files kept; older ones are deleted.
    pub keep_files: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
            file: None,
            rotation: super::logging::LogRotation::Daily,
            keep_files: 14,
        }
    }
}

/// `[telemetry]`: spans exported over OTLP/HTTP (protobuf) to an OpenTelemetry collector.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP URL, such as `http://otel-collector:4318`; `/v1/traces` is
    /// added when the URL has no path. No spans are exported when unset. Credentials go in
    /// `OTEL_EXPORTER_OTLP_HEADERS`, not in the URL.
    #[serde(serialize_with = "redact_url_setting")]
    #[schema(value_type = Option<String>)]
    pub otlp_endpoint: Option<Url>,
    /// The `service.name` of the exported spans.
    pub service_name: String,
    /// Which spans are exported, as a tracing filter: `info` gives requests, action runs,
    /// rule steps and remote calls; `info,pincher::db=debug,sqlx::query=debug` adds each
    /// SQL statement.
    pub level: String,
    /// Share of new traces kept, from 0.0 to 1.0; a request with a sampled `traceparent`
    /// follows its caller's decision.
    pub sample_ratio: f64,
    /// Longest one export to the collector may take before it is given up.
    pub export_timeout_secs: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "pincher".into(),
            level: "info".into(),
            sample_ratio: 1.0,
            export_timeout_secs: 10,
        }
    }
}

/// How API requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every endpoint but the probes, `GET /`, `/openapi.json` and `/metrics` needs a bearer
    /// token (`pincher tokens create`).
    #[default]
    Token,
    /// Every request is accepted. For local development only; `serve` refuses it on a
    /// non-loopback address.
    Disabled,
}

/// `[auth]`: API authentication.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The authentication mode.
    #[schema(inline)]
    pub mode: AuthMode,
    /// How long a verified token is trusted before it is checked against the database
    /// again; a token revoked on another replica stops working within this time. At most
    /// [`MAX_TOKEN_CACHE_TTL_SECS`].
    pub token_cache_ttl_secs: u64,
    /// How long a token the database did not know is refused without asking it again, so a
    /// client repeating a bad token does not reach the database.
    pub negative_cache_secs: u64,
    /// Most database lookups of unknown tokens in flight at once; further requests with
    /// unknown tokens wait their turn (within the request timeout).
    pub max_concurrent_lookups: usize,
}

/// The longest `auth.token_cache_ttl_secs` may be: a revocation must reach every replica
/// within minutes.
pub const MAX_TOKEN_CACHE_TTL_SECS: u64 = 300;

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Token,
            token_cache_ttl_secs: 10,
            negative_cache_secs: 10,
            max_concurrent_lookups: 4,
        }
    }
}

/// `[aws]`: how the AWS plugins reach AWS. Credentials come from the standard chain.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// Named profile from the shared config files.
    pub profile: Option<String>,
    /// Home region, used for global APIs and when no region is given.
    pub region: Option<String>,
    /// Endpoint override for every AWS API (moto, LocalStack, VPC endpoints).
    #[serde(serialize_with = "redact_url_setting")]
    #[schema(value_type = Option<String>)]
    pub endpoint_url: Option<Url>,
    /// Role assumed in each member account for `--all-accounts`.
    pub assume_role_name: String,
    /// Largest number of a report's AWS calls in flight at once, over all accounts: roles
    /// assumed, regions listed and account × region parts read (the organization's account
    /// list is read beside them, a page at a time).
    pub concurrency: usize,
    /// Largest number of parts of one account read at once (AWS throttles per account and
    /// API), so a wide fan-out does not spend its retries on one account. A part waiting
    /// for its account's turn holds none of the `aws.concurrency` slots.
    pub concurrency_per_account: usize,
    /// How throttled and failed AWS calls are retried: `adaptive` (the default: retries with
    /// backoff, and a client-side rate limit that slows down while AWS throttles) or
    /// `standard` (backoff only).
    pub retry_mode: AwsRetryMode,
    /// Most attempts of one AWS call, the first included.
    pub max_attempts: u32,
    /// Longest a connection to an AWS endpoint may take to open.
    pub connect_timeout_secs: u64,
    /// Longest one attempt of an AWS call may take (retries get their own).
    pub attempt_timeout_secs: u64,
    /// Longest an AWS call may take with its retries, so a cron run cannot hang.
    pub operation_timeout_secs: u64,
    /// A price table of your own (TOML, in the form of the shipped
    /// `src/plugins/aws/prices.toml`) for cost estimates; the shipped AWS list prices when
    /// unset.
    #[schema(value_type = Option<String>)]
    pub prices_file: Option<PathBuf>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            profile: None,
            region: None,
            endpoint_url: None,
            assume_role_name: "OrganizationAccountAccessRole".into(),
            concurrency: 8,
            concurrency_per_account: 4,
            retry_mode: AwsRetryMode::Adaptive,
            max_attempts: 6,
            connect_timeout_secs: 5,
            attempt_timeout_secs: 30,
            operation_timeout_secs: 120,
            prices_file: None,
        }
    }
}

/// How AWS calls are retried (the SDK's retry modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AwsRetryMode {
    /// Exponential backoff with jitter, and a client-side rate limit under throttling.
    Adaptive,
    /// Exponential backoff with jitter.
    Standard,
}

/// The largest age threshold accepted, in days (ten years).
pub const MAX_AGE_DAYS: i64 = 3650;

/// `[savings]`: when old or stopped resources count as waste in the savings report (each
/// can be given per run as a param of `aws.savings.report`), and whether it shows last
/// month's bill for context.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SavingsSettings {
    /// EBS snapshots whose volume is gone count as waste from this age, in days.
    pub snapshot_age_days: i64,
    /// EC2 instances count as waste when stopped for this many days.
    pub stopped_days: i64,
    /// Manual RDS snapshots count as waste from this age, in days.
    pub database_snapshot_age_days: i64,
    /// Show last month's billed total from Cost Explorer in the summary, for context. Each
    /// report then makes one `ce:GetCostAndUsage` call, which AWS charges (0.01 USD).
    pub billed_total: bool,
}

impl Default for SavingsSettings {
    fn default() -> Self {
        Self {
            snapshot_age_days: 30,
            stopped_days: 14,
            database_snapshot_age_days: 90,
            billed_total: true,
        }
    }
}

/// `[opsmanager]`: MongoDB Ops Manager public API access.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OpsManagerSettings {
    /// Base URL, e.g. `https://opsmanager.example.com` (the API path is added).
    #[serde(serialize_with = "redact_url_setting")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Url>,
    /// Public API key (the digest user name).
    pub public_key: Option<String>,
    /// Private API key (the digest password).
    #[serde(serialize_with = "redact_secret")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub private_key: Option<SecretString>,
    /// Groups (projects) backed up when none are named on the command line; a list in TOML,
    /// comma-separated in the environment.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub group_ids: Vec<String>,
    /// Timeout of one API call.
    pub timeout_secs: u64,
    /// Largest number of groups fetched at once.
    pub concurrency: usize,
    /// Retries of a call answered with 5xx or 429, or that could not be sent.
    pub max_retries: u32,
    /// Delay before the first retry; each further retry waits twice as long.
    pub retry_delay_ms: u64,
    /// Largest response body accepted, in bytes; a larger one fails that call (and only that
    /// group's backup).
    pub max_response_bytes: usize,
}

impl Default for OpsManagerSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            public_key: None,
            private_key: None,
            group_ids: Vec::new(),
            timeout_secs: 30,
            concurrency: 4,
            max_retries: 3,
            retry_delay_ms: 500,
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// `[chef]`: Chef server API access.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChefSettings {
    /// Server URL, with or without `/organizations/NAME`.
    #[serde(serialize_with = "redact_url_setting")]
    #[schema(value_type = Option<String>)]
    pub server_url: Option<Url>,
    /// Client (or user) name that signs requests.
    pub client_name: Option<String>,
    /// Path of the client's private key (PEM).
    #[schema(value_type = Option<String>)]
    pub client_key: Option<PathBuf>,
    /// Signing protocol version: `1.3`, `1.1` or `1.0`.
    #[serde(deserialize_with = "version_text")]
    pub sign_version: String,
    /// Timeout of one API call.
    pub timeout_secs: u64,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
}

/// Reads a version written as text or as a number: environment values are parsed, so
/// `PINCHER_CHEF__SIGN_VERSION=1.0` arrives as the float 1.0, which must stay `1.0`.
fn version_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(f64),
    }
    Ok(match Version::deserialize(deserializer)? {
        Version::Text(text) => text,
        Version::Number(number) => format!("{number:.1}"),
    })
}

impl Default for ChefSettings {
    fn default() -> Self {
        Self {
            server_url: None,
            client_name: None,
            client_key: None,
            sign_version: "1.3".into(),
            timeout_secs: 30,
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[backups]`: where configuration backups are kept: the local folder `dir`, or, when
/// `s3_bucket` is set, that S3 bucket under `s3_prefix` (same names in both).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// Local backup folder, used when `s3_bucket` is not set (and by `--dir`).
    #[schema(value_type = String)]
    pub dir: PathBuf,
    /// S3 bucket to keep backups in instead of `dir`, reached with the `[aws]` settings
    /// (credentials chain, `aws.region`, `aws.endpoint_url`); empty means unset.
    pub s3_bucket: Option<String>,
    /// Key prefix inside `s3_bucket`, e.g. `pincher/opsmanager/`; a `/` is added when it is
    /// missing. Backups are `{s3_prefix}{groupId}/{version}-{md5}.json`.
    pub s3_prefix: String,
    /// The account id (12 digits) that must own `s3_bucket`; sent as `ExpectedBucketOwner`
    /// on every call, so backups are never written to, or read from, a bucket that changed
    /// hands.
    pub s3_expected_owner: Option<String>,
    /// Server-side encryption of the objects written: `AES256` (S3-managed keys) or
    /// `aws:kms`.
    pub s3_encryption: String,
    /// The KMS key for `s3_encryption = "aws:kms"`; the bucket's default key when unset.
    pub s3_kms_key_id: Option<String>,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("backups"),
            s3_bucket: None,
            s3_prefix: String::new(),
            s3_expected_owner: None,
            s3_encryption: "AES256".into(),
            s3_kms_key_id: None,
        }
    }
}

impl BackupSettings {
    /// The bucket, when one is set and not empty.
    pub fn bucket(&self) -> Option<&str> {
        self.s3_bucket.as_deref().filter(|b| !b.is_empty())
    }

    /// `s3_prefix` ending with `/` when it is not empty.
    pub fn prefix(&self) -> String {
        if self.s3_prefix.is_empty() || self.s3_prefix.ends_with('/') {
            self.s3_prefix.clone()
        } else {
            format!("{}/", self.s3_prefix)
        }
    }

    fn normalize(&mut self) {
        if self.bucket().is_none() {
            self.s3_bucket = None;
        }
        self.s3_prefix = self.prefix();
    }
}

/// Checks an S3 bucket name against the general-purpose bucket naming rules: 3 to 63
/// lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit,
/// no `..`, not shaped like an IP address, and none of the reserved prefixes and suffixes.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!("expected 3 to 63 characters, got {}", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "{c:?} is not allowed: use lowercase letters, digits, dots and hyphens"
        ));
    }
    let edge_ok = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.bytes().next()) || !edge_ok(name.bytes().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err("dots may not be next to each other or to a hyphen".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be shaped like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("the prefix {prefix} is reserved"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("the suffix {suffix} is reserved"));
        }
    }
    Ok(())
}

/// `[metrics]`: who may scrape `/metrics`, and where.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    #[serde(serialize_with = "redact_secret")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub token: Option<SecretString>,
    /// When set (e.g. `0.0.0.0:9100`), `/metrics` is served on this address only, not on the
    /// main listener.
    pub listen: Option<String>,
}

/// `[status]`: how `/status` checks dependencies.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StatusSettings {
    /// Longest one dependency check may take before it counts as failed.
    pub check_timeout_ms: u64,
    /// How long a `/status` result is reused, so probes cannot overload dependencies.
    pub cache_ttl_ms: u64,
}

impl Default for StatusSettings {
    fn default() -> Self {
        Self {
            check_timeout_ms: 2000,
            cache_ttl_ms: 2000,
        }
    }
}

/// `[dashboard]`: the HTML dashboard a browser gets at `/`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardSettings {
    /// Serve the dashboard pages to anyone, read-only, without a login (the API and the
    /// reports still need a token).
    pub public: bool,
    /// How long the Cost Explorer figures on the dashboard are reused before they are read
    /// again (each read is a billed Cost Explorer call).
    pub cost_cache_secs: u64,
    /// Age of the last Ops Manager backup at which its group turns red; amber from three
    /// quarters of it. Keep it equal to the `PincherOpsManagerBackupStale` alert's.
    pub backup_alert_hours: u64,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            public: false,
            cost_cache_secs: 3600,
            backup_alert_hours: 26,
        }
    }
}

/// `[scheduler]`: the rules scheduler (`pincher daemon`, or inside `serve`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Run the scheduler inside `pincher serve` (as `serve --scheduler` does).
    pub enabled: bool,
    /// How often the scheduler looks for due slots and expired leases.
    pub tick_ms: u64,
    /// How long a replica's claim on a running rule run lasts unless it renews it (every
    /// third of this): a replica that dies leaves its run abandoned this long after.
    pub lease_secs: u64,
    /// How late a slot may still run after downtime; older slots are recorded as missed.
    pub catch_up_secs: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            tick_ms: 500,
            lease_secs: 30,
            catch_up_secs: 300,
        }
    }
}

/// `[actions]`: how actions run, whoever starts them.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ActionSettings {
    /// How long `POST /actions/{name}/runs` waits for the run to finish before it answers
    /// 202 with the run's address; the run goes on either way. At most half the request
    /// timeout is waited, whatever this says.
    pub inline_wait_ms: u64,
    /// Resources carrying this tag, `KEY=VALUE`, are never stopped or started; runs report
    /// them as skipped.
    pub protect_tag: String,
}

impl Default for ActionSettings {
    fn default() -> Self {
        Self {
            inline_wait_ms: 2000,
            protect_tag: "pincher:protect=true".into(),
        }
    }
}

impl ActionSettings {
    /// How long a request waits for a run: `inline_wait_ms`, at most half of
    /// `request_timeout`.
    pub fn inline_wait(&self, request_timeout: std::time::Duration) -> std::time::Duration {
        std::time::Duration::from_millis(self.inline_wait_ms).min(request_timeout / 2)
    }

    /// The protect tag's key and value.
    pub fn protect(&self) -> (&str, &str) {
        self.protect_tag
            .split_once('=')
            .unwrap_or((&self.protect_tag, ""))
    }
}

/// Reads a list from a sequence (TOML) or a comma-separated string (environment variables,
/// whose values are kept as text so numeric-looking strings are never reinterpreted).
fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(deserializer)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The environment pincher reads settings from: `.env` entries overlaid by the process
/// environment. Kept as a map so loading never mutates the process environment.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// Reads `.env` from the current directory (if present) and the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        let mut vars = BTreeMap::new();
        match dotenvy::from_path_iter(".env") {
            Ok(entries) => {
                for entry in entries {
                    let (key, value) = entry.map_err(|e| SettingsError::DotEnv(e.to_string()))?;
                    vars.insert(key, value);
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(SettingsError::DotEnv(e.to_string())),
        }
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    /// An environment made of the given variables only (for tests and embedding).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// One variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    fn settings_vars(&self) -> config::Map<String, String> {
        let prefix = format!("{ENV_PREFIX}_");
        // Top-level settings have no section, so no `__`; the other PINCHER_ variables
        // (PINCHER_LOG, PINCHER_CONFIG) are not settings.
        let top_level = |key: &str| {
            key.strip_prefix(&prefix)
                .is_some_and(|name| TOP_LEVEL_SETTINGS.contains(&name))
        };
        self.vars
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && (k.contains("__") || top_level(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Settings {
    /// Loads defaults < `file` (TOML) < `.env` < `PINCHER_*` variables, then validates.
    pub fn load(file: Option<&Path>, env: &Environment) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_owned()));
            }
            builder = builder
                .add_source(config::File::from(path.to_owned()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .source(Some(env.settings_vars())),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.backups.normalize();
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that have the right type but may still be unusable.
    pub fn validate(&self) -> Result<(), SettingsError> {
        fn invalid(key: &'static str, message: impl Into<String>) -> SettingsError {
            SettingsError::Invalid {
                key,
                message: message.into(),
            }
        }
        if self.server.host.parse::<std::net::IpAddr>().is_err() && self.server.host != "localhost"
        {
            return Err(invalid(
                "server.host",
                format!(
                    "expected an IP address such as 127.0.0.1 or 0.0.0.0, got {:?}",
                    self.server.host
                ),
            ));
        }
        // Counts and durations where 0 would mean nothing served or no bound at all.
        for (key, zero) in [
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs == 0,
            ),
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests == 0,
            ),
            (
                "auth.max_concurrent_lookups",
                self.auth.max_concurrent_lookups == 0,
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs == 0,
            ),
            (
                "server.idle_timeout_secs",
                self.server.idle_timeout_secs == 0,
            ),
            ("server.max_connections", self.server.max_connections == 0),
            ("server.body_limit_bytes", self.server.body_limit_bytes == 0),
            (
                "database.max_connections",
                self.database.max_connections == 0,
            ),
            (
                "database.acquire_timeout_secs",
                self.database.acquire_timeout_secs == 0,
            ),
            ("log.keep_files", self.log.keep_files == 0),
            (
                "telemetry.export_timeout_secs",
                self.telemetry.export_timeout_secs == 0,
            ),
            ("status.check_timeout_ms", self.status.check_timeout_ms == 0),
            ("aws.concurrency", self.aws.concurrency == 0),
            (
                "aws.concurrency_per_account",
                self.aws.concurrency_per_account == 0,
            ),
            ("aws.max_attempts", self.aws.max_attempts == 0),
            ("opsmanager.concurrency", self.opsmanager.concurrency == 0),
            ("opsmanager.timeout_secs", self.opsmanager.timeout_secs == 0),
            ("chef.timeout_secs", self.chef.timeout_secs == 0),
            (
                "aws.connect_timeout_secs",
                self.aws.connect_timeout_secs == 0,
            ),
            (
                "aws.attempt_timeout_secs",
                self.aws.attempt_timeout_secs == 0,
            ),
            (
                "aws.operation_timeout_secs",
                self.aws.operation_timeout_secs == 0,
            ),
        ] {
            if zero {
                return Err(invalid(key, "expected at least 1"));
            }
        }
        if self.auth.token_cache_ttl_secs > MAX_TOKEN_CACHE_TTL_SECS {
            return Err(invalid(
                "auth.token_cache_ttl_secs",
                format!(
                    "expected at most {MAX_TOKEN_CACHE_TTL_SECS} seconds, so that a revoked \
                     token stops working on every replica within minutes"
                ),
            ));
        }
        if self.auth.negative_cache_secs > MAX_TOKEN_CACHE_TTL_SECS {
            return Err(invalid(
                "auth.negative_cache_secs",
                format!("expected at most {MAX_TOKEN_CACHE_TTL_SECS} seconds"),
            ));
        }
        if self.server.header_limit_bytes < 1024 {
            return Err(invalid(
                "server.header_limit_bytes",
                "expected at least 1024",
            ));
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:") || self.database.url.is_postgres()) {
            return Err(invalid(
                "database.url",
                format!(
                    "expected sqlite://FILE or postgres://USER@HOST:PORT/DB, got {}",
                    self.database.url.redacted()
                ),
            ));
        }
        if self.database.statement_timeout_ms == 0 {
            return Err(invalid(
                "database.statement_timeout_ms",
                "expected at least 1 (0 would mean no timeout)",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!("expected a filter such as `info` or `pincher=debug`: {e}"),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.level) {
            return Err(invalid(
                "telemetry.level",
                format!("expected a filter such as `info` or `info,pincher::db=debug`: {e}"),
            ));
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return Err(invalid(
                "telemetry.sample_ratio",
                format!("expected 0.0 to 1.0, got {}", self.telemetry.sample_ratio),
            ));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "telemetry.otlp_endpoint",
                    format!(
                        "expected an http:// or https:// URL (OTLP over HTTP), got {}",
                        super::secret::redact_url(url.as_str())
                    ),
                ));
            }
            // Export errors name the URL; credentials belong in headers, never in it.
            if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                return Err(invalid(
                    "telemetry.otlp_endpoint",
                    "expected a URL with no user, password or query; give the collector's \
                     credentials in OTEL_EXPORTER_OTLP_HEADERS (e.g. \
                     `authorization=Bearer TOKEN`)",
                ));
            }
        }
        if let Some(listen) = &self.metrics.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "metrics.listen",
                format!("expected an address such as 0.0.0.0:9100, got {listen:?}"),
            ));
        }
        if self
            .actions
            .protect_tag
            .split_once('=')
            .is_none_or(|(key, _)| key.is_empty())
        {
            return Err(invalid(
                "actions.protect_tag",
                format!(
                    "expected KEY=VALUE such as pincher:protect=true, got {:?}",
                    self.actions.protect_tag
                ),
            ));
        }
        if let Err((key, message)) = self.limits.check() {
            return Err(invalid(key, message));
        }
        if self.scheduler.tick_ms == 0 || self.scheduler.tick_ms > 60_000 {
            return Err(invalid(
                "scheduler.tick_ms",
                "expected 1 to 60000 milliseconds",
            ));
        }
        if self.scheduler.lease_secs < 2 {
            return Err(invalid("scheduler.lease_secs", "expected at least 2"));
        }
        for (key, days) in [
            ("savings.snapshot_age_days", self.savings.snapshot_age_days),
            ("savings.stopped_days", self.savings.stopped_days),
            (
                "savings.database_snapshot_age_days",
                self.savings.database_snapshot_age_days,
            ),
        ] {
            if !(0..=MAX_AGE_DAYS).contains(&days) {
                return Err(invalid(
                    key,
                    format!("expected 0 to {MAX_AGE_DAYS} days, got {days}"),
                ));
            }
        }
        if let Some(file) = &self.aws.prices_file
            && !file.is_file()
        {
            return Err(invalid(
                "aws.prices_file",
                format!("{} is not a file", file.display()),
            ));
        }
        if let Some(dir) = &self.templates_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "templates_dir",
                format!("{} is not a folder", dir.display()),
            ));
        }
        if self.opsmanager.base_url.is_some()
            && (self.opsmanager.public_key.is_none() || self.opsmanager.private_key.is_none())
        {
            return Err(invalid(
                "opsmanager.public_key",
                "opsmanager.base_url is set, so public_key and private_key are required",
            ));
        }
        if self.chef.server_url.is_some() && self.chef.client_name.is_none() {
            return Err(invalid(
                "chef.client_name",
                "chef.server_url is set, so the client name that signs requests is required",
            ));
        }
        if self.chef.server_url.is_some() && self.chef.client_key.is_none() {
            return Err(invalid(
                "chef.client_key",
                "chef.server_url is set, so the path of the client's private key is required",
            ));
        }
        if let Some(bucket) = self.backups.bucket()
            && let Err(message) = check_bucket_name(bucket)
        {
            return Err(invalid(
                "backups.s3_bucket",
                format!("{bucket:?} is not a valid S3 bucket name: {message}"),
            ));
        }
        if let Some(owner) = &self.backups.s3_expected_owner
            && (owner.len() != 12 || !owner.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "backups.s3_expected_owner",
                format!("expected a 12-digit AWS account id, got {owner:?}"),
            ));
        }
        if !["AES256", "aws:kms"].contains(&self.backups.s3_encryption.as_str()) {
            return Err(invalid(
                "backups.s3_encryption",
                format!(
                    "expected AES256 or aws:kms, got {:?}",
                    self.backups.s3_encryption
                ),
            ));
        }
        if self.backups.s3_prefix.starts_with('/') || self.backups.s3_prefix.contains("//") {
            return Err(invalid(
                "backups.s3_prefix",
                format!(
                    "expected a key prefix such as pincher/opsmanager/, without a leading / \
                     or empty segments, got {:?}",
                    self.backups.s3_prefix
                ),
            ));
        }
        if !["1.0", "1.1", "1.3"].contains(&self.chef.sign_version.as_str()) {
            return Err(invalid(
                "chef.sign_version",
                format!("expected 1.3, 1.1 or 1.0, got {:?}", self.chef.sign_version),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load(None, &Environment::from_vars(vars.iter().copied()))
    }

    #[test]
    fn empty_configuration_gives_defaults() -> Result<(), SettingsError> {
        let settings = load(&[])?;
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.database.url.expose(), "sqlite://pincher.db");
        Ok(())
    }

    #[test]
    fn env_vars_use_double_underscore_between_levels() -> Result<(), SettingsError> {
        let settings = load(&[
            ("PINCHER_SERVER__PORT", "9000"),
            ("PINCHER_DATABASE__URL", "postgres://u:p@h/db"),
            ("PINCHER_LOG", "debug"),
            ("PINCHER_OPSMANAGER__GROUP_IDS", "a,b"),
        ])?;
        assert_eq!(settings.server.port, 9000);
        assert!(settings.database.url.is_postgres());
        assert_eq!(settings.opsmanager.group_ids, vec!["a", "b"]);
        Ok(())
    }

    #[test]
    fn toml_file_is_overridden_by_env() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("pincher.toml");
        std::fs::write(&file, "[server]\nport = 7000\nhost = \"0.0.0.0\"\n")?;
        let env = Environment::from_vars([("PINCHER_SERVER__PORT", "7001")]);
        let settings = Settings::load(Some(&file), &env)?;
        assert_eq!(settings.server.port, 7001);
        assert_eq!(settings.server.host, "0.0.0.0");
        Ok(())
    }

    #[test]
    fn numeric_looking_strings_stay_strings() -> Result<(), SettingsError> {
        let settings = load(&[
            ("PINCHER_CHEF__SIGN_VERSION", "1.0"),
            ("PINCHER_CHEF__CLIENT_NAME", "007"),
            ("PINCHER_DATABASE__MIGRATE_ON_START", "false"),
        ])?;
        assert_eq!(settings.chef.sign_version, "1.0");
        assert_eq!(settings.chef.client_name.as_deref(), Some("007"));
        assert!(!settings.database.migrate_on_start);
        Ok(())
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = load(&[("PINCHER_SERVER__PORT", "eighty")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("server.port"), "{err}");
    }

    #[test]
    fn an_unusable_value_names_the_key_and_the_form() {
        let err = load(&[("PINCHER_DATABASE__URL", "mysql://x")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("database.url"), "{err}");
        assert!(err.contains("postgres://"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = load(&[("PINCHER_SERVER__PROT", "1")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn chef_sign_versions_survive_number_parsing() -> Result<(), SettingsError> {
        for version in ["1.0", "1.1", "1.3"] {
            let settings = load(&[("PINCHER_CHEF__SIGN_VERSION", version)])?;
            assert_eq!(settings.chef.sign_version, version);
        }
        let err = load(&[("PINCHER_CHEF__SIGN_VERSION", "2")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("chef.sign_version"), "{err}");
        Ok(())
    }

    #[test]
    fn a_chef_server_needs_a_client_name_and_key() {
        let err = load(&[
            ("PINCHER_CHEF__SERVER_URL", "https://chef.example.com"),
            ("PINCHER_CHEF__CLIENT_NAME", "pincher"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("chef.client_key"), "{err}");
    }

    #[test]
    fn the_s3_store_settings_are_normalised_and_checked() -> Result<(), SettingsError> {
        let settings = load(&[
            ("PINCHER_BACKUPS__S3_BUCKET", "ops-backups.example"),
            ("PINCHER_BACKUPS__S3_PREFIX", "pincher/om"),
        ])?;
        assert_eq!(settings.backups.bucket(), Some("ops-backups.example"));
        assert_eq!(settings.backups.s3_prefix, "pincher/om/");
        let settings = load(&[("PINCHER_BACKUPS__S3_BUCKET", "")])?;
        assert_eq!(settings.backups.s3_bucket, None);
        assert_eq!(settings.backups.s3_prefix, "");
        for bad in [
            "Ops_Backups",
            "ab",
            "-ops",
            "ops..b",
            "192.168.1.2",
            "xn--ops",
        ] {
            let err = load(&[("PINCHER_BACKUPS__S3_BUCKET", bad)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("backups.s3_bucket") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        let err = load(&[("PINCHER_BACKUPS__S3_PREFIX", "/abs")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("backups.s3_prefix"), "{err}");
        Ok(())
    }

    #[test]
    fn top_level_settings_are_read_from_the_environment() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().to_str().unwrap_or_default().to_owned();
        let settings = load(&[
            ("PINCHER_TEMPLATES_DIR", path.as_str()),
            ("PINCHER_LOG", "debug"),
            ("PINCHER_CONFIG", "/nowhere.toml"),
        ])?;
        assert_eq!(settings.templates_dir.as_deref(), Some(dir.path()));
        Ok(())
    }

    #[test]
    fn limits_are_read_from_the_environment_and_checked() -> Result<(), SettingsError> {
        let settings = load(&[
            ("PINCHER_LIMITS__TAG_FILTERS", "5"),
            ("PINCHER_LIMITS__EARLIEST_DATE", "2010-01-01"),
        ])?;
        assert_eq!(settings.limits.tag_filters, 5);
        assert_eq!(settings.limits.earliest_date.year(), 2010);
        for (key, value, named) in [
            ("PINCHER_LIMITS__TAG_FILTERS", "0", "limits.tag_filters"),
            (
                "PINCHER_LIMITS__LATEST_DATE",
                "1999-01-01",
                "limits.latest_date",
            ),
            (
                "PINCHER_AUTH__TOKEN_CACHE_TTL_SECS",
                "3600",
                "auth.token_cache_ttl_secs",
            ),
            (
                "PINCHER_SERVER__MAX_CONNECTIONS",
                "0",
                "server.max_connections",
            ),
        ] {
            let err = load(&[(key, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
        Ok(())
    }

    #[test]
    fn secrets_are_redacted_when_shown() -> Result<(), Box<dyn std::error::Error>> {
        let settings = load(&[
            ("PINCHER_OPSMANAGER__BASE_URL", "http://om.example"),
            ("PINCHER_OPSMANAGER__PUBLIC_KEY", "pub"),
            ("PINCHER_OPSMANAGER__PRIVATE_KEY", "very-secret-key"),
        ])?;
        let shown = serde_json::to_string(&settings)?;
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(!format!("{settings:?}").contains("very-secret-key"));
        Ok(())
    }
}
