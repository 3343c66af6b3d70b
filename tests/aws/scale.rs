//! Reports at organisation scale: throttled calls are retried (AWS's adaptive mode) and no
//! account × region part is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::harness::Pincher;
use crate::support::proxy::{Proxy, attempt, ec2_throttled, is_action, region};

const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

/// The EC2 report of every account in [`REGIONS`].
const ORG_REPORT: [&str; 6] = [
    "aws",
    "--all-accounts",
    "--regions",
    "eu-west-1,us-east-1",
    "ec2",
    "report",
];

/// An organisation of three accounts with one instance in each of two regions, read through
/// a proxy that throttles the first attempt of every DescribeInstances; and the throttled
/// count.
async fn throttled_organisation() -> (Pincher, Proxy, Arc<AtomicUsize>) {
    let mut pincher = Pincher::new(2).await;
    let org = &pincher.org;
    for account in std::iter::once(&org.management).chain(&org.members) {
        for region in REGIONS {
            org.run_instances(account, region, 1, "t3.micro", &[]).await;
        }
    }
    let throttled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&throttled);
    let proxy = Proxy::start(
        &pincher.org.url,
        Box::new(move |parts, body| {
            (is_action(body, "DescribeInstances") && attempt(parts) == 1).then(|| {
                counted.fetch_add(1, Ordering::SeqCst);
                ec2_throttled()
            })
        }),
    );
    pincher.endpoint = Some(proxy.url.clone());
    (pincher, proxy, throttled)
}

fn parts_of(report: &Value) -> BTreeSet<(String, String)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap_or_default().to_owned(),
                r["region"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_throttled_part_is_retried_and_present() {
    let (pincher, _proxy, throttled) = throttled_organisation().await;
    let args = ORG_REPORT;
    let report = pincher.json(&args);
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["attempted"], 6);
    let org = &pincher.org;
    let expected: BTreeSet<(String, String)> = std::iter::once(&org.management)
        .chain(&org.members)
        .flat_map(|a| REGIONS.map(|r| (a.account.clone(), r.to_owned())))
        .collect();
    assert_eq!(parts_of(&report), expected, "every account × region part");
    assert_eq!(
        throttled.load(Ordering::SeqCst),
        6,
        "each part was throttled once, then retried"
    );

    // With one attempt allowed, the same throttling loses the parts, and says so.
    let mut command_args: Vec<&str> = args.to_vec();
    command_args.extend(["--output", "json"]);
    let output = pincher
        .command()
        .env("PINCHER_AWS__MAX_ATTEMPTS", "1")
        .args(&command_args)
        .output()
        .expect("run pincher");
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RequestLimitExceeded"), "{stderr}");
}

#[tokio::test]
async fn jsonl_streams_each_part_as_it_finishes_then_the_totals() {
    let mut pincher = Pincher::new(1).await;
    let org = &pincher.org;
    for account in [&org.management, &org.members[0]] {
        for region in REGIONS {
            org.run_instances(account, region, 2, "t3.micro", &[]).await;
        }
    }
    // eu-west-1 answers 3 s late: us-east-1's rows must be out before it does.
    let proxy = Proxy::delayed(
        &pincher.org.url,
        Box::new(|_, _| None),
        Box::new(|parts, body| {
            let slow = is_action(body, "DescribeInstances")
                && region(parts).as_deref() == Some("eu-west-1");
            std::time::Duration::from_secs(if slow { 3 } else { 0 })
        }),
    );
    pincher.endpoint = Some(proxy.url.clone());
    let mut child = pincher
        .command()
        .args(ORG_REPORT)
        .args(["--output", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pincher");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<(std::time::Instant, Value)> = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|line| {
                let value = serde_json::from_str(&line).expect("each line is JSON");
                (std::time::Instant::now(), value)
            })
            .collect()
    })
    .await
    .expect("read the lines");
    let status = child.wait().expect("pincher ends");
    assert_eq!(status.code(), Some(0));

    let (rows, last) = lines.split_at(lines.len() - 1);
    assert_eq!(rows.len(), 8, "one line per instance: {lines:?}");
    assert!(
        rows.iter()
            .all(|(_, line)| line["row"]["instance_id"].is_string())
    );
    let report = &last[0].1["report"];
    assert_eq!(report["kind"], "aws.ec2");
    assert_eq!(
        report["summary"]["total"], 8,
        "the totals count the streamed rows"
    );
    assert_eq!(
        report["summary"]["by_region"],
        json!({"eu-west-1": 4, "us-east-1": 4})
    );
    assert_eq!(report["errors"], json!([]));
    assert!(report.get("rows").is_none(), "the rows are not repeated");
    let first_row = rows[0].0;
    let first_late = rows
        .iter()
        .find(|(_, line)| line["row"]["region"] == "eu-west-1")
        .map(|(at, _)| *at)
        .expect("eu-west-1 rows");
    assert_eq!(
        rows[0].1["row"]["region"], "us-east-1",
        "the fast region comes first"
    );
    assert!(
        first_late.duration_since(first_row) >= std::time::Duration::from_secs(2),
        "us-east-1's rows were written as soon as it finished, not with the rest"
    );
}

/// A proxy that holds the requests `slow` picks for 3 s, and the instants at which the slow
/// requests and the DescribeInstances calls arrived.
type Arrivals = Arc<std::sync::Mutex<Vec<(std::time::Instant, &'static str)>>>;

fn holding_back(
    pincher: &mut Pincher,
    slow: impl Fn(&axum::http::request::Parts, &axum::body::Bytes) -> bool + Send + Sync + 'static,
) -> (Proxy, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    let proxy = Proxy::delayed(
        &pincher.org.url,
        Box::new(|_, _| None),
        Box::new(move |parts, body| {
            let held = slow(parts, body);
            let what = if held {
                Some("held")
            } else {
                is_action(body, "DescribeInstances").then_some("DescribeInstances")
            };
            if let Some(what) = what {
                seen.lock()
                    .expect("arrivals")
                    .push((std::time::Instant::now(), what));
            }
            std::time::Duration::from_secs(if held { 3 } else { 0 })
        }),
    );
    pincher.endpoint = Some(proxy.url.clone());
    (proxy, arrivals)
}

/// How long after the held request the first DescribeInstances arrived (negative: before).
fn first_part_after_held(arrivals: &Arrivals) -> f64 {
    let arrivals = arrivals.lock().expect("arrivals");
    let at = |what: &str| {
        arrivals
            .iter()
            .find(|(_, w)| *w == what)
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("no {what} request arrived"))
    };
    let (held, first_part) = (at("held"), at("DescribeInstances"));
    if first_part >= held {
        first_part.duration_since(held).as_secs_f64()
    } else {
        -held.duration_since(first_part).as_secs_f64()
    }
}

#[tokio::test]
async fn an_accounts_parts_start_while_other_roles_are_still_being_assumed() {
    let mut pincher = Pincher::new(2).await;
    let slow_account = pincher.org.members[1].account.clone();
    // The second member's role is assumed 3 s late.
    let (_proxy, arrivals) = holding_back(&mut pincher, move |_, body| {
        is_action(body, "AssumeRole")
            && String::from_utf8_lossy(body).contains(slow_account.as_str())
    });
    let report = pincher.json(&ORG_REPORT);
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["attempted"], 6);
    assert_eq!(
        report["scope"]["accounts"].as_array().map(Vec::len),
        Some(3)
    );
    let after = first_part_after_held(&arrivals);
    assert!(
        after < 2.0,
        "the other accounts' parts began {after:.2} s after the slow AssumeRole was sent: \
         they waited for it"
    );
}

#[tokio::test]
async fn the_first_page_of_accounts_is_read_while_the_next_page_is_listed() {
    // 21 members and the management account: two pages of 20 at most.
    let mut pincher = Pincher::new(21).await;
    let (_proxy, arrivals) = holding_back(&mut pincher, |parts, body| {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default();
        target.ends_with(".ListAccounts") && String::from_utf8_lossy(body).contains("NextToken")
    });
    let report = pincher.json(&["aws", "--all-accounts", "ec2", "report"]);
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["attempted"], 22);
    assert_eq!(
        report["scope"]["accounts"].as_array().map(Vec::len),
        Some(22),
        "the accounts of both pages were read"
    );
    let after = first_part_after_held(&arrivals);
    assert!(
        after < 2.0,
        "the first page's parts began {after:.2} s after the second page was asked for: \
         they waited for it"
    );
}

/// The access key a request is signed with (one per account's credentials).
fn access_key(parts: &axum::http::request::Parts) -> String {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn parts_in_flight_keep_to_the_global_and_the_per_account_bounds() {
    #[derive(Default)]
    struct InFlight {
        now: BTreeMap<String, usize>,
        most_per_account: usize,
        most: usize,
    }
    let mut pincher = Pincher::new(2).await;
    let flight = Arc::new(std::sync::Mutex::new(InFlight::default()));
    let (arrive, leave) = (Arc::clone(&flight), Arc::clone(&flight));
    // Each DescribeInstances is held 300 ms: counted in flight from its arrival until the
    // proxy lets it through.
    let proxy = Proxy::delayed(
        &pincher.org.url,
        Box::new(move |parts, body| {
            if is_action(body, "DescribeInstances") {
                let mut f = leave.lock().expect("in flight");
                if let Some(n) = f.now.get_mut(&access_key(parts)) {
                    *n -= 1;
                }
            }
            None
        }),
        Box::new(move |parts, body| {
            if !is_action(body, "DescribeInstances") {
                return std::time::Duration::ZERO;
            }
            let mut f = arrive.lock().expect("in flight");
            *f.now.entry(access_key(parts)).or_default() += 1;
            let total = f.now.values().sum();
            let mine = f.now.values().copied().max().unwrap_or_default();
            f.most = f.most.max(total);
            f.most_per_account = f.most_per_account.max(mine);
            std::time::Duration::from_millis(300)
        }),
    );
    pincher.endpoint = Some(proxy.url.clone());
    let output = pincher
        .command()
        .env("PINCHER_AWS__CONCURRENCY", "2")
        .env("PINCHER_AWS__CONCURRENCY_PER_ACCOUNT", "1")
        .args([
            "aws",
            "--all-accounts",
            "--regions",
            "eu-west-1,us-east-1,us-west-2",
            "ec2",
            "report",
            "--output",
            "json",
        ])
        .output()
        .expect("run pincher");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["attempted"], 9, "3 accounts × 3 regions");
    let f = flight.lock().expect("in flight");
    assert_eq!(f.most_per_account, 1, "aws.concurrency_per_account = 1");
    assert_eq!(f.most, 2, "aws.concurrency = 2, and both slots were used");
}
