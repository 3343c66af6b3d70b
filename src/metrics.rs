//! The process-wide Prometheus registry and the metrics pincher records: HTTP traffic, the
//! database pool, the build, the process, plugin calls, the waste the last savings report
//! found, and domain gauges read from the database at scrape time.

mod http;

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use rust_decimal::prelude::ToPrimitive;
use time::OffsetDateTime;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::db::Db;
use crate::domain::run::{RunOutcome, TargetResult};
use crate::plugins::aws::savings::SavingsSummary;
use crate::plugins::opsmanager::BackupStore;

/// Version of the running binary.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit the binary was built from (`unknown` outside a checkout).
pub const GIT_SHA: &str = env!("PINCHER_GIT_SHA");

/// Every metric pincher exposes.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// HTTP requests by method, matched route template and status, and their latency.
    http: http::HttpMetrics,
    /// HTTP requests being served.
    pub http_in_flight: IntGauge,
    /// Database pool connections by state (`open`, `idle`).
    pub db_pool_connections: IntGaugeVec,
    /// Registered services.
    pub services_registered: IntGauge,
    /// Requests refused by authentication, by reason.
    pub auth_failures: IntCounterVec,
    /// Tokens looked up in the database (cache misses), by result.
    pub token_lookups: IntCounterVec,
    /// Start time of each group's last successful Ops Manager backup run (Unix seconds).
    pub opsmanager_last_success: prometheus::GaugeVec,
    /// Ops Manager backup runs by group and outcome, as recorded in the database.
    pub opsmanager_runs: IntCounterVec,
    /// Backups in the backup store (folder or S3 bucket), by group.
    pub opsmanager_backups_stored: IntGaugeVec,
    /// Calls to external systems by plugin, operation and outcome.
    pub plugin_calls: IntCounterVec,
    /// AWS call attempts that were retries.
    pub aws_retries: IntCounter,
    /// Latency of calls to external systems by plugin, operation and outcome.
    pub plugin_call_duration: HistogramVec,
    /// Action runs that ended in this process, by action and outcome.
    pub action_runs: IntCounterVec,
    /// Targets of action runs that ended in this process, by action and result.
    pub action_targets: IntCounterVec,
    /// How long action runs took, by action.
    pub action_run_duration: HistogramVec,
    /// Rule runs by rule and outcome, as recorded in the database.
    pub rule_runs: IntCounterVec,
    /// Each rule's last successful run (or, before its first, when its schedule began).
    pub rule_last_success: prometheus::GaugeVec,
    /// Each enabled scheduled rule's next fire time.
    pub rule_next_run: prometheus::GaugeVec,
    /// Each enabled scheduled rule's period: the time between its next two fire times.
    pub rule_period: prometheus::GaugeVec,
    /// Findings of the last full savings report, by kind.
    pub savings_findings: IntGaugeVec,
    /// Estimated monthly waste of the last full savings report, by kind (US dollars).
    pub savings_estimated_monthly: prometheus::GaugeVec,
    /// When the savings report the two gauges above come from finished.
    pub savings_last_run: prometheus::Gauge,
    /// The finish time of the savings run shown, so an older one never replaces it.
    savings_shown: Mutex<Option<OffsetDateTime>>,
}

/// The action whose runs feed the savings gauges.
const SAVINGS_ACTION: &str = "aws.savings.report";

/// Recorded savings runs looked at per scrape for the newest full one.
const SAVINGS_RUNS_SCANNED: u32 = 20;

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Longest a scrape waits for the backup store's listing (one ListObjectsV2 call per 1,000
/// backups in S3).
pub const STORE_LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Duration buckets of action runs, in seconds: from a quick report to a long backup.
const RUN_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Latency buckets for calls to remote APIs, in seconds.
const REMOTE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn defined<T>(result: prometheus::Result<T>) -> T {
    result.unwrap_or_else(|e| unreachable!("static metric definitions are valid: {e}"))
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let http = defined(http::HttpMetrics::new());
        let http_in_flight = defined(IntGauge::new(
            "http_requests_in_flight",
            "HTTP requests being served.",
        ));
        let db_pool_connections = defined(IntGaugeVec::new(
            Opts::new(
                "pincher_db_pool_connections",
                "Database pool connections by state: open (all) and idle.",
            ),
            &["state"],
        ));
        let services_registered = defined(IntGauge::new(
            "pincher_services_registered",
            "Services in the registry.",
        ));
        let auth_failures = defined(IntCounterVec::new(
            Opts::new(
                "pincher_auth_failures_total",
                "Requests refused by authentication, by reason: missing, invalid or scope.",
            ),
            &["reason"],
        ));
        let token_lookups = defined(IntCounterVec::new(
            Opts::new(
                "pincher_token_lookups_total",
                "Bearer tokens looked up in the database because no cache answered, by result: \
                 found, unknown or error.",
            ),
            &["result"],
        ));
        let opsmanager_last_success = defined(prometheus::GaugeVec::new(
            Opts::new(
                "pincher_opsmanager_last_backup_success_timestamp_seconds",
                "Start of each group's last successful Ops Manager backup run, Unix seconds.",
            ),
            &["group"],
        ));
        let opsmanager_runs = defined(IntCounterVec::new(
            Opts::new(
                "pincher_opsmanager_backup_runs_total",
                "Ops Manager backup runs by group and outcome (stored, unchanged, failed).",
            ),
            &["group", "outcome"],
        ));
        let opsmanager_backups_stored = defined(IntGaugeVec::new(
            Opts::new(
                "pincher_opsmanager_backups_stored",
                "Ops Manager backups in the backup store (folder or S3 bucket), by group.",
            ),
            &["group"],
        ));
        let plugin_calls = defined(IntCounterVec::new(
            Opts::new(
                "pincher_plugin_calls_total",
                "Calls to external systems by plugin, operation and outcome.",
            ),
            &["plugin", "operation", "outcome"],
        ));
        let aws_retries = defined(IntCounter::new(
            "pincher_aws_retries_total",
            "AWS call attempts that were retries (throttling, or a transient failure).",
        ));
        let plugin_call_duration = defined(HistogramVec::new(
            HistogramOpts::new(
                "pincher_plugin_call_duration_seconds",
                "Latency of calls to external systems by plugin, operation and outcome.",
            )
            .buckets(REMOTE_BUCKETS.to_vec()),
            &["plugin", "operation", "outcome"],
        ));
        let action_runs = defined(IntCounterVec::new(
            Opts::new(
                "pincher_action_runs_total",
                "Action runs that ended in this process, by action and outcome (ok, partial, \
                 failed, abandoned).",
            ),
            &["action", "outcome"],
        ));
        let action_targets = defined(IntCounterVec::new(
            Opts::new(
                "pincher_action_targets_total",
                "Targets of action runs that ended in this process, by action and result \
                 (changed, unchanged, skipped, failed, would_change).",
            ),
            &["action", "result"],
        ));
        let action_run_duration = defined(HistogramVec::new(
            HistogramOpts::new(
                "pincher_action_run_duration_seconds",
                "How long action runs took, by action.",
            )
            .buckets(RUN_BUCKETS.to_vec()),
            &["action"],
        ));
        let rule_runs = defined(IntCounterVec::new(
            Opts::new(
                "pincher_rule_runs_total",
                "Rule runs by rule and outcome (ok, partial, failed, abandoned, missed), as \
                 recorded in the database; one series per existing rule.",
            ),
            &["rule", "outcome"],
        ));
        let rule_gauge = |name: &str, help: &str| {
            defined(prometheus::GaugeVec::new(Opts::new(name, help), &["rule"]))
        };
        let rule_last_success = rule_gauge(
            "pincher_rule_last_success_timestamp_seconds",
            "End of each rule's last successful run, Unix seconds (before its first success: \
             when its schedule began).",
        );
        let rule_next_run = rule_gauge(
            "pincher_rule_next_run_timestamp_seconds",
            "Next fire time of each enabled scheduled rule, Unix seconds.",
        );
        let rule_period = rule_gauge(
            "pincher_rule_period_seconds",
            "Time between the next two fire times of each enabled scheduled rule.",
        );
        let savings_findings = defined(IntGaugeVec::new(
            Opts::new(
                "pincher_savings_findings",
                "Findings of the last full savings report (no tag or service filter), by kind.",
            ),
            &["kind"],
        ));
        let savings_estimated_monthly = defined(prometheus::GaugeVec::new(
            Opts::new(
                "pincher_savings_estimated_monthly_usd",
                "Estimated monthly waste found by the last full savings report, by kind, US \
                 dollars (list prices from the price table; unpriced findings count zero).",
            ),
            &["kind"],
        ));
        let savings_last_run = defined(prometheus::Gauge::new(
            "pincher_savings_last_run_timestamp_seconds",
            "When the savings report behind pincher_savings_* finished, Unix seconds.",
        ));
        let build_info = defined(IntGaugeVec::new(
            Opts::new(
                "pincher_build_info",
                "Always 1; labels say which build is running.",
            ),
            &["version", "git_sha"],
        ));
        build_info.with_label_values(&[VERSION, GIT_SHA]).set(1);

        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(http.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(db_pool_connections.clone()),
            Box::new(services_registered.clone()),
            Box::new(auth_failures.clone()),
            Box::new(token_lookups.clone()),
            Box::new(opsmanager_last_success.clone()),
            Box::new(opsmanager_runs.clone()),
            Box::new(opsmanager_backups_stored.clone()),
            Box::new(plugin_calls.clone()),
            Box::new(aws_retries.clone()),
            Box::new(plugin_call_duration.clone()),
            Box::new(action_runs.clone()),
            Box::new(action_targets.clone()),
            Box::new(action_run_duration.clone()),
            Box::new(rule_runs.clone()),
            Box::new(rule_last_success.clone()),
            Box::new(rule_next_run.clone()),
            Box::new(rule_period.clone()),
            Box::new(savings_findings.clone()),
            Box::new(savings_estimated_monthly.clone()),
            Box::new(savings_last_run.clone()),
            Box::new(build_info),
            #[cfg(target_os = "linux")]
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for collector in collectors {
            defined(registry.register(collector));
        }
        Self {
            registry,
            http,
            http_in_flight,
            db_pool_connections,
            services_registered,
            auth_failures,
            token_lookups,
            opsmanager_last_success,
            opsmanager_runs,
            opsmanager_backups_stored,
            plugin_calls,
            aws_retries,
            plugin_call_duration,
            action_runs,
            action_targets,
            action_run_duration,
            rule_runs,
            rule_last_success,
            rule_next_run,
            rule_period,
            savings_findings,
            savings_estimated_monthly,
            savings_last_run,
            savings_shown: Mutex::new(None),
        }
    }

    /// Shows the savings report that finished at `finished`, unless a later one is shown
    /// already. Only the kinds it looked for are replaced.
    pub fn record_savings(&self, finished: OffsetDateTime, summary: &SavingsSummary) {
        let mut shown = self
            .savings_shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shown.is_some_and(|at| at >= finished) {
            return;
        }
        *shown = Some(finished);
        for (kind, tally) in &summary.by_kind {
            self.savings_findings
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(tally.findings).unwrap_or(i64::MAX));
            self.savings_estimated_monthly
                .with_label_values(&[kind.as_str()])
                .set(tally.estimated_monthly.to_f64().unwrap_or_default());
        }
        self.savings_last_run.set(finished.unix_timestamp() as f64);
    }

    /// Shows the newest recorded full savings run (a rule's step, or an action run made
    /// through the API, by any replica) when it is newer than the one shown.
    async fn refresh_savings(&self, db: &Db) -> Result<(), crate::db::DbError> {
        let shown = *self
            .savings_shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((finished, summary)) = latest_savings(db, shown).await? {
            self.record_savings(finished, &summary);
        }
        Ok(())
    }

    /// Records one action run that ended. `action` is a registered action's name, so every
    /// label comes from a fixed set.
    pub fn record_action_run(
        &self,
        action: &'static str,
        outcome: RunOutcome,
        targets: &[TargetResult],
        elapsed: Duration,
    ) {
        self.action_runs
            .with_label_values(&[action, outcome.as_str()])
            .inc();
        for target in targets {
            self.action_targets
                .with_label_values(&[action, target.result.as_str()])
                .inc();
        }
        self.action_run_duration
            .with_label_values(&[action])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one call to an external system.
    pub fn record_plugin_call(
        &self,
        plugin: &str,
        operation: &str,
        outcome: &str,
        elapsed: Duration,
    ) {
        let labels = [plugin, operation, outcome];
        self.plugin_calls.with_label_values(&labels).inc();
        self.plugin_call_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// HTTP requests served so far.
    pub fn http_requests_served(&self) -> u64 {
        self.http.served()
    }

    /// Records one HTTP request served.
    pub fn record_http_request(&self, method: &str, route: &str, status: &str, elapsed: Duration) {
        self.http.record(method, route, status, elapsed);
    }

    /// Refreshes the gauges read from the database and the backup store. A database or store
    /// that cannot be read (in [`STORE_LIST_TIMEOUT`] for the store) leaves the last values
    /// in place.
    pub async fn refresh(&self, db: &Db, store: &BackupStore) {
        let pool = db.pool_stats();
        self.db_pool_connections
            .with_label_values(&["open"])
            .set(i64::from(pool.size));
        self.db_pool_connections
            .with_label_values(&["idle"])
            .set(i64::try_from(pool.idle).unwrap_or(i64::MAX));
        match crate::db::services::count(db).await {
            Ok(count) => self.services_registered.set(count),
            Err(e) => tracing::debug!(error = %e, "cannot count services for the metrics"),
        }
        match crate::db::backups::last_success_per_group(db).await {
            Ok(rows) => {
                for row in rows {
                    self.opsmanager_last_success
                        .with_label_values(&[row.group_id.as_str()])
                        .set(row.started_at.unix_timestamp() as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read backup runs for the metrics"),
        }
        match crate::db::backups::run_counts(db).await {
            Ok(rows) => {
                for row in rows {
                    let counter = self
                        .opsmanager_runs
                        .with_label_values(&[row.group_id.as_str(), row.outcome.as_str()]);
                    let recorded = u64::try_from(row.runs).unwrap_or(0);
                    if recorded > counter.get() {
                        counter.inc_by(recorded - counter.get());
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot count backup runs for the metrics"),
        }
        if let Err(e) = self.refresh_rules(db).await {
            tracing::debug!(error = %e, "cannot read the rules for the metrics");
        }
        if let Err(e) = self.refresh_savings(db).await {
            tracing::debug!(error = %e, "cannot read the savings runs for the metrics");
        }
        match tokio::time::timeout(STORE_LIST_TIMEOUT, store.list(None)).await {
            Ok(Ok(entries)) => {
                let mut per_group = std::collections::BTreeMap::<String, i64>::new();
                for entry in entries {
                    *per_group.entry(entry.group_id.to_string()).or_default() += 1;
                }
                self.opsmanager_backups_stored.reset();
                for (group, count) in per_group {
                    self.opsmanager_backups_stored
                        .with_label_values(&[group.as_str()])
                        .set(count);
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot list backups for the metrics"),
            Err(_) => tracing::debug!("listing backups for the metrics timed out"),
        }
    }

    /// Refreshes the rule series from the database: one per existing rule.
    async fn refresh_rules(&self, db: &Db) -> Result<(), crate::db::DbError> {
        let rules = crate::db::rules::scheduled(db, false).await?;
        let counts = crate::db::rules::run_counts(db).await?;
        let now = time::OffsetDateTime::now_utc();
        self.rule_last_success.reset();
        self.rule_next_run.reset();
        self.rule_period.reset();
        for scheduled in &rules {
            let rule = &scheduled.rule;
            let last_success = counts
                .iter()
                .filter(|c| c.rule_name == rule.name && c.outcome == "ok")
                .find_map(|c| c.last_finished)
                .unwrap_or(scheduled.since);
            self.rule_last_success
                .with_label_values(&[rule.name.as_str()])
                .set(last_success.unix_timestamp() as f64);
            if let Some(schedule) = rule.parsed_schedule().filter(|_| rule.enabled) {
                if let Some(next) = schedule.next_after(now) {
                    self.rule_next_run
                        .with_label_values(&[rule.name.as_str()])
                        .set(next.unix_timestamp() as f64);
                }
                if let Some(period) = schedule.period(now) {
                    self.rule_period
                        .with_label_values(&[rule.name.as_str()])
                        .set(period.as_seconds_f64());
                }
            }
        }
        for count in counts {
            let counter = self
                .rule_runs
                .with_label_values(&[count.rule_name.as_str(), count.outcome.as_str()]);
            let recorded = u64::try_from(count.runs).unwrap_or(0);
            if recorded > counter.get() {
                counter.inc_by(recorded - counter.get());
            }
        }
        Ok(())
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// Whether a savings run's params ask for the whole picture of its accounts and regions: no
/// tag or service filter (a kind filter is fine: only those kinds are replaced).
/// The summary of the newest recorded full savings run (a rule's step, or an action run made
/// through the API, by any replica) and when it finished, unless it finished no later than
/// `newer_than`.
pub async fn latest_savings(
    db: &Db,
    newer_than: Option<OffsetDateTime>,
) -> Result<Option<(OffsetDateTime, SavingsSummary)>, crate::db::DbError> {
    let runs = crate::db::runs::latest_ok(db, SAVINGS_ACTION, SAVINGS_RUNS_SCANNED).await?;
    let Some((id, finished, _)) = runs.into_iter().find(|(_, _, params)| full_savings(params))
    else {
        return Ok(None);
    };
    if newer_than.is_some_and(|at| at >= finished) {
        return Ok(None);
    }
    let run = crate::db::runs::get(db, id).await?;
    let summary = run
        .output
        .and_then(|mut output| serde_json::from_value(output["summary"].take()).ok());
    if summary.is_none() {
        tracing::debug!(run = %id, "a savings run's summary cannot be read");
    }
    Ok(summary.map(|s| (finished, s)))
}

pub fn full_savings(params: &serde_json::Value) -> bool {
    let empty = |key: &str| {
        params
            .get(key)
            .is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
    };
    empty("tags") && empty("service")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unfiltered_savings_runs_feed_the_gauges() {
        assert!(full_savings(&serde_json::json!({})));
        assert!(full_savings(
            &serde_json::json!({"regions": ["eu-west-1"], "kinds": ["gp2-volume"]})
        ));
        assert!(!full_savings(
            &serde_json::json!({"tags": ["team=billing"]})
        ));
        assert!(!full_savings(&serde_json::json!({"service": "billing"})));
    }
}
