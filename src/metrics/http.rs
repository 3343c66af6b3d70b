//! The HTTP request metrics (`http_requests_total`, `http_request_duration_seconds`), kept
//! per thread and summed when `/metrics` is scraped.
//!
//! Recording a request writes only counters that its own thread created, with plain loads
//! and stores: no locked instruction and no cache line that another core also writes. Shared
//! prometheus counters and histograms took several atomic additions per request on cache
//! lines that every core wrote, which moved those lines between the cores on every request.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use thread_local::ThreadLocal;

/// Upper bounds of the latency buckets (1 ms to 10 s), in nanoseconds, so that a request is
/// placed by integer comparison; exposed in seconds.
const BUCKET_NANOS: [u64; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A series on cache lines of its own, so that no two threads write one line.
type SharedSeries = Arc<CachePadded<Series>>;

/// One label set's counts, written by one thread only.
#[derive(Debug)]
struct Series {
    method: Box<str>,
    route: Box<str>,
    status: Box<str>,
    requests: AtomicU64,
    nanos: AtomicU64,
    /// Requests per bucket, not cumulative; slower than the last bound counts only in
    /// `requests`.
    buckets: [AtomicU64; BUCKET_NANOS.len()],
}

/// Adds one to a counter that only the calling thread writes.
fn bump(cell: &AtomicU64, by: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Every thread's series, and the descriptions of the two metrics they make. A clone shares
/// them (one goes into the registry, one records).
#[derive(Debug, Clone)]
pub struct HttpMetrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Every thread's series, for scrapes.
    series: Mutex<Vec<SharedSeries>>,
    /// Each thread's own series, the ones it writes; each thread's list on lines of its own.
    own: ThreadLocal<CachePadded<RefCell<Vec<SharedSeries>>>>,
    descs: Vec<Desc>,
}

const REQUESTS: &str = "http_requests_total";
const REQUESTS_HELP: &str = "HTTP requests by method, matched route template and status code.";
const DURATION: &str = "http_request_duration_seconds";
const DURATION_HELP: &str = "HTTP request latency by method and matched route template.";

impl HttpMetrics {
    /// No requests recorded yet.
    pub fn new() -> prometheus::Result<Self> {
        let labels = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect();
        Ok(Self(Arc::new(Inner {
            series: Mutex::default(),
            own: ThreadLocal::new(),
            descs: vec![
                Desc::new(
                    REQUESTS.into(),
                    REQUESTS_HELP.into(),
                    labels(&["method", "route", "status"]),
                    HashMap::new(),
                )?,
                Desc::new(
                    DURATION.into(),
                    DURATION_HELP.into(),
                    labels(&["method", "route"]),
                    HashMap::new(),
                )?,
            ],
        })))
    }

    /// Records one request served. The calling thread's series for these labels is found in its
    /// own list, or created and also registered for scrapes.
    pub fn record(&self, method: &str, route: &str, status: &str, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut own = self.0.own.get_or_default().borrow_mut();
        let known = own
            .iter()
            .position(|s| &*s.status == status && &*s.method == method && &*s.route == route);
        let index = known.unwrap_or_else(|| {
            let series = Arc::new(CachePadded::new(Series {
                method: method.into(),
                route: route.into(),
                status: status.into(),
                requests: AtomicU64::new(0),
                nanos: AtomicU64::new(0),
                buckets: Default::default(),
            }));
            self.lock().push(Arc::clone(&series));
            own.push(series);
            own.len() - 1
        });
        let series = &own[index];
        bump(&series.requests, 1);
        bump(&series.nanos, nanos);
        if let Some(bucket) = BUCKET_NANOS.iter().position(|&bound| nanos <= bound) {
            bump(&series.buckets[bucket], 1);
        }
    }

    /// Requests recorded so far, over every label set and thread.
    pub fn served(&self) -> u64 {
        self.lock()
            .iter()
            .map(|s| s.requests.load(Ordering::Relaxed))
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SharedSeries>> {
        // Only ever pushed to; a panic elsewhere while it was held leaves it consistent.
        self.0.series.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sums of one label set over all threads.
#[derive(Default)]
struct Totals {
    requests: u64,
    nanos: u64,
    buckets: [u64; BUCKET_NANOS.len()],
}

impl Totals {
    fn add(&mut self, series: &Series) {
        self.requests = self
            .requests
            .wrapping_add(series.requests.load(Ordering::Relaxed));
        self.nanos = self
            .nanos
            .wrapping_add(series.nanos.load(Ordering::Relaxed));
        for (total, cell) in self.buckets.iter_mut().zip(&series.buckets) {
            *total = total.wrapping_add(cell.load(Ordering::Relaxed));
        }
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

impl Collector for HttpMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut by_status = BTreeMap::<(&str, &str, &str), Totals>::new();
        let mut by_route = BTreeMap::<(&str, &str), Totals>::new();
        let all = self.lock();
        for series in all.iter() {
            let (method, route, status) = (&*series.method, &*series.route, &*series.status);
            by_status
                .entry((method, route, status))
                .or_default()
                .add(series);
            by_route.entry((method, route)).or_default().add(series);
        }
        let requests = by_status
            .into_iter()
            .map(|((method, route, status), totals)| {
                let mut counter = Counter::default();
                counter.set_value(totals.requests as f64);
                let mut metric = Metric::from_label(vec![
                    label("method", method),
                    label("route", route),
                    label("status", status),
                ]);
                metric.set_counter(counter);
                metric
            })
            .collect();
        let durations = by_route
            .into_iter()
            .map(|((method, route), totals)| {
                let mut cumulative = 0;
                let buckets = BUCKET_NANOS
                    .iter()
                    .zip(totals.buckets)
                    .map(|(&bound, count)| {
                        cumulative += count;
                        let mut bucket = Bucket::default();
                        bucket.set_upper_bound(Duration::from_nanos(bound).as_secs_f64());
                        bucket.set_cumulative_count(cumulative);
                        bucket
                    })
                    .collect();
                let mut histogram = Histogram::default();
                histogram.set_sample_count(totals.requests);
                histogram.set_sample_sum(Duration::from_nanos(totals.nanos).as_secs_f64());
                histogram.set_bucket(buckets);
                let mut metric =
                    Metric::from_label(vec![label("method", method), label("route", route)]);
                metric.set_histogram(histogram);
                metric
            })
            .collect();
        vec![
            family(REQUESTS, REQUESTS_HELP, MetricType::COUNTER, requests),
            family(DURATION, DURATION_HELP, MetricType::HISTOGRAM, durations),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    #[test]
    fn buckets_are_exposed_in_seconds_from_1_ms_to_10_s() {
        let metrics = HttpMetrics::new().expect("descs");
        metrics.record("GET", "/a", "200", Duration::from_millis(3));
        let families = metrics.collect();
        let bounds: Vec<f64> = sample(&families, DURATION).get_metric()[0]
            .get_histogram()
            .get_bucket()
            .iter()
            .map(Bucket::upper_bound)
            .collect();
        assert_eq!(
            bounds,
            [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
            ]
        );
    }

    #[test]
    fn two_instances_on_one_thread_count_apart() {
        let first = HttpMetrics::new().expect("descs");
        let second = HttpMetrics::new().expect("descs");
        first.record("GET", "/a", "200", Duration::from_millis(1));
        second.record("GET", "/a", "200", Duration::from_millis(1));
        second.record("GET", "/a", "200", Duration::from_millis(1));
        let count = |metrics: &HttpMetrics| {
            sample(&metrics.collect(), REQUESTS).get_metric()[0]
                .get_counter()
                .value()
        };
        assert_eq!((count(&first), count(&second)), (1.0, 2.0));
    }

    #[test]
    fn requests_from_several_threads_are_summed_per_label_set() {
        let metrics = HttpMetrics::new().expect("descs");
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    metrics.record("GET", "/a", "200", Duration::from_micros(500));
                    metrics.record("GET", "/a", "200", Duration::from_millis(20));
                    metrics.record("GET", "/a", "404", Duration::from_secs(11));
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        metrics.record("POST", "/a", "201", Duration::from_millis(1));

        let families = metrics.collect();
        let counts: Vec<(Vec<&str>, f64)> = sample(&families, REQUESTS)
            .get_metric()
            .iter()
            .map(|m| {
                let labels = m.get_label().iter().map(LabelPair::value).collect();
                (labels, m.get_counter().value())
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                (vec!["GET", "/a", "200"], 6.0),
                (vec!["GET", "/a", "404"], 3.0),
                (vec!["POST", "/a", "201"], 1.0),
            ]
        );

        let durations = sample(&families, DURATION).get_metric();
        assert_eq!(durations.len(), 2);
        let get = durations[0].get_histogram();
        assert_eq!(get.get_sample_count(), 9);
        assert!((get.get_sample_sum() - 3.0 * (0.0005 + 0.02 + 11.0)).abs() < 1e-9);
        let cumulative: Vec<u64> = get
            .get_bucket()
            .iter()
            .map(Bucket::cumulative_count)
            .collect();
        assert_eq!(cumulative, vec![3, 3, 3, 3, 6, 6, 6, 6, 6, 6, 6, 6, 6]);
        let post = durations[1].get_histogram();
        assert_eq!(post.get_sample_count(), 1);
        assert_eq!(
            post.get_bucket()[0].cumulative_count(),
            1,
            "1 ms is within le=0.001"
        );
    }
}
