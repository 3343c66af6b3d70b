//! Reports at organisation scale: throttled calls are retried (AWS's adaptive mode) and no
//! account × region part is lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::harness::Pincher;
use crate::support::proxy::{Proxy, attempt, ec2_throttled};

const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

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
            let describe = body
                .windows(b"Action=DescribeInstances".len())
                .any(|w| w == b"Action=DescribeInstances");
            (describe && attempt(parts) == 1).then(|| {
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
    let args = [
        "aws",
        "--all-accounts",
        "--regions",
        "eu-west-1,us-east-1",
        "ec2",
        "report",
    ];
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
