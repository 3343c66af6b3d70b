//! Integrations with the systems pincher reports on and acts on (AWS, Ops Manager, Chef).
//! Plugins know nothing of HTTP, the terminal, the database or each other: they take settings
//! and clients and return typed values with their own error enums; joins of two plugins are
//! actions. Every remote call goes through [`observe`], so it is counted
//! and timed by plugin, operation and outcome, and traced.

pub mod aws;
pub mod chef;
pub mod http;
pub mod opsmanager;
pub mod sdk;

use std::future::Future;
use std::time::Instant;

use crate::config::telemetry;
use crate::metrics::METRICS;

/// Runs one remote call, recording its outcome (`ok` or `error`) and latency, in a client
/// span whose trace headers its HTTP requests carry when traces are exported.
/// `operation` must come from a fixed set (an API name), never from user input.
pub fn observe<T, E>(
    plugin: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    let span = telemetry::client_span(plugin, operation);
    // Built before the block, so that the block holds the call once, not the call and the
    // traced call.
    let traced = telemetry::within_call(span.clone(), call);
    async move {
        let started = Instant::now();
        let result = traced.await;
        let outcome = if result.is_ok() {
            "ok"
        } else {
            telemetry::client_failed(&span);
            "error"
        };
        METRICS.record_plugin_call(plugin, operation, outcome, started.elapsed());
        result
    }
}

/// Progress of a fan-out, reported by plugins. The CLI draws a progress bar from it; the
/// server ignores it.
pub trait Progress: Send + Sync {
    /// `total` more units of work are about to start (a fan-out learns its parts account by
    /// account, so this may come more than once).
    fn start(&self, total: u64) {
        let _ = total;
    }
    /// `count` more rows were read.
    fn rows(&self, count: u64) {
        let _ = count;
    }
    /// Whether rows are streamed out as parts finish (`--output jsonl`) rather than kept for
    /// the report. Reports that can stream then hand each part's rows to [`Progress::stream`]
    /// and keep only their totals.
    fn streams(&self) -> bool {
        false
    }
    /// One finished part's rows, when [`Progress::streams`].
    fn stream(&self, rows: Vec<serde_json::Value>) {
        let _ = rows;
    }
    /// One unit (named by `label`, e.g. `123456789012/eu-west-1`) finished.
    fn advance(&self, label: &str) {
        let _ = label;
    }
    /// All work finished.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn observed_calls_are_counted_by_outcome() {
        let counter = |outcome| {
            METRICS
                .plugin_calls
                .with_label_values(&["test", "observe", outcome])
                .get()
        };
        let (ok, err) = (counter("ok"), counter("error"));
        let _ = observe("test", "observe", async { Ok::<_, ()>(1) }).await;
        let _ = observe("test", "observe", async { Err::<(), _>("boom") }).await;
        assert_eq!(counter("ok"), ok + 1);
        assert_eq!(counter("error"), err + 1);
    }
}
