//! What the dashboard shows, gathered from the database and Cost Explorer: each registered
//! service's cost last month and the total cost of the last six months (read at most once per
//! `dashboard.cost_cache_secs`, with the time they were read), the freshness of each Ops
//! Manager group's backup against the alert threshold, and the waste the newest savings run
//! found. No HTTP here; `routes::dashboard` lays it out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::actions::cost_report::DEFAULT_METRIC;
use crate::actions::registered;
use crate::app::Context;
use crate::db::DbError;
use crate::plugins::NoProgress;
use crate::plugins::aws::ce::{self, CeQuery, Granularity, GroupBy};
use crate::report::{Chart, Headline, Period, money, timestamp};

/// Months the dashboard's cost chart covers, the current one not included.
pub const COST_MONTHS: u8 = 6;

/// Longest the dashboard waits for Cost Explorer before it shows the page without costs.
const COST_TIMEOUT: Duration = Duration::from_secs(15);

/// How soon a failed Cost Explorer read is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The Cost Explorer figures of the dashboard, as read at one time.
#[derive(Debug, Clone, Serialize)]
pub struct Costs {
    /// When they were read (RFC 3339).
    pub as_of: String,
    #[serde(skip)]
    read_at: OffsetDateTime,
    /// The month `by_service` covers, `YYYY-MM`.
    pub last_month: String,
    /// Each registered service's cost last month, formatted, by name.
    pub by_service: BTreeMap<String, String>,
    /// Total cost per month of the last [`COST_MONTHS`] months.
    pub monthly: Option<Chart>,
    /// The sum of those months, formatted.
    pub total: Option<String>,
    /// Why the figures could not be read, if they could not.
    pub error: Option<String>,
}

/// The dashboard's cost figures, read again when older than the configured time; one read at
/// a time, however many pages are asked for at once.
#[derive(Debug, Default)]
pub struct CostCache {
    slot: tokio::sync::Mutex<Option<Arc<Costs>>>,
}

impl CostCache {
    /// The cached figures, read again first when stale.
    pub async fn get(&self, ctx: &Context) -> Arc<Costs> {
        let ttl = Duration::from_secs(ctx.settings.dashboard.cost_cache_secs);
        let mut slot = self.slot.lock().await;
        if let Some(costs) = slot.as_ref() {
            let age = OffsetDateTime::now_utc() - costs.read_at;
            let keep = if costs.error.is_some() {
                RETRY_AFTER_FAILURE.min(ttl)
            } else {
                ttl
            };
            if age < keep {
                return Arc::clone(costs);
            }
        }
        let costs = Arc::new(read_costs(ctx).await);
        *slot = Some(Arc::clone(&costs));
        costs
    }
}

async fn read_costs(ctx: &Context) -> Costs {
    let now = OffsetDateTime::now_utc();
    let Period {
        start: last_month,
        end: this_month,
    } = ce::last_full_month(now.date());
    let mut costs = Costs {
        as_of: timestamp(now),
        read_at: now,
        last_month: format!("{}-{:02}", last_month.year(), u8::from(last_month.month())),
        by_service: BTreeMap::new(),
        monthly: None,
        total: None,
        error: None,
    };
    let read = async {
        let aws = ctx.aws().await;
        let totals = CeQuery {
            period: Period {
                start: ce::add_months(this_month, -i32::from(COST_MONTHS)),
                end: this_month,
            },
            granularity: Granularity::Monthly,
            metric: DEFAULT_METRIC.into(),
            group_by: None,
            forecast: false,
        };
        let report = ce::cost_report(aws, &totals, &[], &NoProgress)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(mut chart) = report.summary.chart(&report.rows) {
            chart.title = format!("Total cost, last {COST_MONTHS} months");
            costs.monthly = Some(chart);
        }
        costs.total = Some(money(report.summary.total, &report.summary.unit));
        let services = registered::tagged(ctx).await.map_err(|e| e.to_string())?;
        if services.is_empty() {
            return Ok::<(), String>(());
        }
        let by_service = CeQuery {
            period: Period {
                start: last_month,
                end: this_month,
            },
            granularity: Granularity::Monthly,
            metric: DEFAULT_METRIC.into(),
            group_by: Some(GroupBy::RegisteredService),
            forecast: false,
        };
        let report = ce::cost_report(aws, &by_service, &services, &NoProgress)
            .await
            .map_err(|e| e.to_string())?;
        for (name, amount) in &report.summary.by_group {
            costs
                .by_service
                .insert(name.clone(), money(*amount, &report.summary.unit));
        }
        Ok(())
    };
    match tokio::time::timeout(COST_TIMEOUT, read).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => costs.error = Some(e),
        Err(_) => {
            costs.error = Some(format!(
                "Cost Explorer did not answer within {} s",
                COST_TIMEOUT.as_secs()
            ));
        }
    }
    if let Some(error) = &costs.error {
        tracing::warn!(%error, "the dashboard could not read Cost Explorer");
    }
    costs
}

/// How fresh a group's last backup is against the alert threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Younger than three quarters of the threshold.
    Green,
    /// Between three quarters of the threshold and the threshold.
    Amber,
    /// Older than the threshold, or never backed up.
    Red,
}

impl Freshness {
    /// The freshness of a backup `age` old against `threshold`.
    pub fn of(age: Option<Duration>, threshold: Duration) -> Self {
        match age {
            None => Self::Red,
            Some(age) if age >= threshold => Self::Red,
            Some(age) if age.as_secs_f64() >= threshold.as_secs_f64() * 0.75 => Self::Amber,
            Some(_) => Self::Green,
        }
    }
}

/// One Ops Manager group's backup freshness.
#[derive(Debug, Clone, Serialize)]
pub struct GroupBackup {
    /// The group id.
    pub group: String,
    /// When its last good backup ran (RFC 3339), if ever.
    pub last: Option<String>,
    /// Its age in hours, to one place.
    pub age_hours: Option<String>,
    /// Green, amber or red.
    pub freshness: Freshness,
}

/// Every group that has had a backup run, with the freshness of its last good one.
pub async fn backups(ctx: &Context) -> Result<Vec<GroupBackup>, DbError> {
    let threshold = Duration::from_secs(ctx.settings.dashboard.backup_alert_hours * 3600);
    let now = OffsetDateTime::now_utc();
    let mut groups: BTreeMap<String, Option<OffsetDateTime>> = BTreeMap::new();
    for count in crate::db::backups::run_counts(&ctx.db).await? {
        groups.entry(count.group_id).or_default();
    }
    for last in crate::db::backups::last_success_per_group(&ctx.db).await? {
        groups.insert(last.group_id, Some(last.started_at));
    }
    Ok(groups
        .into_iter()
        .map(|(group, last)| {
            let age = last.map(|at| Duration::try_from(now - at).unwrap_or_default());
            GroupBackup {
                group,
                last: last.map(timestamp),
                age_hours: age.map(|a| format!("{:.1}", a.as_secs_f64() / 3600.0)),
                freshness: Freshness::of(age, threshold),
            }
        })
        .collect())
}

/// The waste the newest full savings run found.
#[derive(Debug, Clone, Serialize)]
pub struct Waste {
    /// When that run finished (RFC 3339).
    pub as_of: String,
    /// Its estimated monthly total, formatted.
    pub total: String,
    /// Estimated monthly waste and findings by kind, largest first.
    pub by_kind: Vec<(String, String, usize)>,
}

/// The waste of the newest full savings run, if one was recorded.
pub async fn waste(ctx: &Context) -> Result<Option<Waste>, DbError> {
    let Some((finished, summary)) = crate::metrics::latest_savings(&ctx.db, None).await? else {
        return Ok(None);
    };
    let mut kinds: Vec<_> = summary
        .by_kind
        .iter()
        .filter(|(_, tally)| tally.findings > 0)
        .collect();
    kinds.sort_by_key(|(_, tally)| std::cmp::Reverse(tally.estimated_monthly));
    Ok(Some(Waste {
        as_of: timestamp(finished),
        total: money(summary.estimated_monthly, "USD"),
        by_kind: kinds
            .iter()
            .map(|(kind, tally)| {
                (
                    kind.as_str().to_owned(),
                    money(tally.estimated_monthly, "USD"),
                    tally.findings,
                )
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_turns_amber_at_three_quarters_and_red_at_the_threshold() {
        let threshold = Duration::from_secs(26 * 3600);
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        assert_eq!(Freshness::of(hours(1), threshold), Freshness::Green);
        assert_eq!(Freshness::of(hours(19), threshold), Freshness::Green);
        assert_eq!(Freshness::of(hours(20), threshold), Freshness::Amber);
        assert_eq!(Freshness::of(hours(26), threshold), Freshness::Red);
        assert_eq!(Freshness::of(None, threshold), Freshness::Red);
    }

    #[test]
    fn months_count_back_across_the_year() {
        use time::macros::date;
        assert_eq!(
            ce::last_full_month(date!(2026 - 12 - 02)).end,
            date!(2026 - 12 - 01)
        );
        assert_eq!(
            ce::add_months(date!(2026 - 12 - 01), -6),
            date!(2026 - 06 - 01)
        );
        assert_eq!(
            ce::add_months(date!(2026 - 02 - 01), -3),
            date!(2025 - 11 - 01)
        );
    }
}
