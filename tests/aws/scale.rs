//! Reports at organisation scale: throttled calls are retried (AWS's adaptive mode) and no
//! account × region part is lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::harness::Pincher;
use crate::support::proxy::{Proxy, attempt, ec2_throttled, is_action, region};

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
        .args([
            "aws",
            "--all-accounts",
            "--regions",
            "eu-west-1,us-east-1",
            "ec2",
            "report",
            "--output",
            "jsonl",
        ])
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
