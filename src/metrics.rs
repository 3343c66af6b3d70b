//! The process-wide Prometheus registry and the metrics pincher records.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Every metric pincher exposes.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Calls to external systems by plugin, operation and outcome.
    pub plugin_calls: IntCounterVec,
    /// Latency of calls to external systems by plugin, operation and outcome.
    pub plugin_call_duration: HistogramVec,
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Latency buckets for calls to remote APIs, in seconds.
const REMOTE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let plugin_calls = IntCounterVec::new(
            Opts::new(
                "pincher_plugin_calls_total",
                "Calls to external systems by plugin, operation and outcome.",
            ),
            &["plugin", "operation", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let plugin_call_duration = HistogramVec::new(
            HistogramOpts::new(
                "pincher_plugin_call_duration_seconds",
                "Latency of calls to external systems by plugin, operation and outcome.",
            )
            .buckets(REMOTE_BUCKETS.to_vec()),
            &["plugin", "operation", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        for collector in [
            Box::new(plugin_calls.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(plugin_call_duration.clone()),
        ] {
            registry
                .register(collector)
                .unwrap_or_else(|e| unreachable!("metrics are registered once: {e}"));
        }
        Self {
            registry,
            plugin_calls,
            plugin_call_duration,
        }
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
}
