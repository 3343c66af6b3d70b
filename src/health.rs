//! Health checks of pincher's dependencies, in the health-check response format
//! (`application/health+json`): the database always, and each configured integration.
//! Checks run concurrently, each under a timeout; results are cached briefly so probes
//! cannot overload the dependencies.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::app::Context;
use crate::metrics::{GIT_SHA, VERSION};

/// Media type of health documents.
pub const HEALTH_JSON: &str = "application/health+json";

/// Overall or per-check status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Healthy.
    Pass,
    /// Healthy with concerns: an optional dependency failed.
    Warn,
    /// Unhealthy: a required dependency failed.
    Fail,
}

/// One component's check result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What kind of component it is (`datastore`, `system`).
    pub component_type: &'static str,
    /// Result.
    pub status: HealthStatus,
    /// Latency of the check.
    pub observed_value: f64,
    /// Unit of `observed_value`.
    pub observed_unit: &'static str,
    /// When the check ran (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The whole health document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Worst status of the required checks (`warn` when only optional ones failed).
    pub status: HealthStatus,
    /// pincher's version.
    pub version: &'static str,
    /// The build's git commit.
    pub release_id: &'static str,
    /// Results keyed `component:measurement`, each a list as the format requires.
    pub checks: BTreeMap<String, Vec<Check>>,
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

struct Probe {
    name: &'static str,
    component_type: &'static str,
    required: bool,
    run: CheckFuture,
}

fn probes(ctx: &Context) -> Vec<Probe> {
    let db = ctx.db.clone();
    let mut probes = vec![Probe {
        name: "database",
        component_type: "datastore",
        required: true,
        run: Box::pin(async move { db.ping().await.map_err(|e| e.to_string()) }),
    }];
    let aws = &ctx.settings.aws;
    if aws.region.is_some() || aws.profile.is_some() || aws.endpoint_url.is_some() {
        let ctx = ctx.clone();
        probes.push(Probe {
            name: "aws",
            component_type: "system",
            required: false,
            run: Box::pin(async move {
                ctx.aws()
                    .await
                    .current_account()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
        });
    }
    if ctx.settings.opsmanager.base_url.is_some() {
        let ctx = ctx.clone();
        probes.push(Probe {
            name: "opsmanager",
            component_type: "system",
            required: false,
            run: Box::pin(async move {
                ctx.opsmanager()
                    .await
                    .map_err(|e| e.to_string())?
                    .check()
                    .await
                    .map_err(|e| e.to_string())
            }),
        });
    }
    if ctx.settings.chef.server_url.is_some() {
        let ctx = ctx.clone();
        probes.push(Probe {
            name: "chef",
            component_type: "system",
            required: false,
            run: Box::pin(async move {
                ctx.chef()
                    .await
                    .map_err(|e| e.to_string())?
                    .check()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
        });
    }
    probes
}

/// Runs every check now.
pub async fn check_now(ctx: &Context) -> Health {
    let timeout = Duration::from_millis(ctx.settings.status.check_timeout_ms);
    let runs = probes(ctx).into_iter().map(|probe| async move {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, probe.run).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        let status = match (&result, probe.required) {
            (Ok(()), _) => HealthStatus::Pass,
            (Err(_), true) => HealthStatus::Fail,
            (Err(_), false) => HealthStatus::Warn,
        };
        let check = Check {
            component_type: probe.component_type,
            status,
            observed_value: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            observed_unit: "ms",
            time: OffsetDateTime::now_utc(),
            output: result.err(),
        };
        (format!("{}:responseTime", probe.name), check)
    });
    let checks: BTreeMap<String, Vec<Check>> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|(name, check)| (name, vec![check]))
        .collect();
    let status = checks
        .values()
        .flatten()
        .map(|c| c.status)
        .max()
        .unwrap_or(HealthStatus::Pass);
    Health {
        status,
        version: VERSION,
        release_id: GIT_SHA,
        checks,
    }
}

/// A cache of the last health result.
#[derive(Debug, Default)]
pub struct HealthCache {
    last: Mutex<Option<(Instant, Health)>>,
}

impl HealthCache {
    /// The cached result if younger than the configured TTL, else a fresh one. Concurrent
    /// callers wait for one run rather than each running the checks.
    pub async fn get(&self, ctx: &Context) -> Health {
        let ttl = Duration::from_millis(ctx.settings.status.cache_ttl_ms);
        let mut last = self.last.lock().await;
        if let Some((at, health)) = last.as_ref()
            && at.elapsed() < ttl
        {
            return health.clone();
        }
        let health = check_now(ctx).await;
        *last = Some((Instant::now(), health.clone()));
        health
    }
}
