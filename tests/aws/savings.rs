//! The savings report on moto: an account seeded with waste of every kind beside healthy
//! look-alikes (attached volumes, an associated address, a snapshot of a live volume, the
//! snapshot behind a registered AMI, current-generation instances, a running database, a
//! supported runtime). Exactly the waste is found, each figure is the price table's, and the
//! age thresholds are tested at 0 (moto cannot backdate) and at their defaults.

use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, VolumeType};
use serde_json::{Value, json};

use crate::harness::{Pincher, stderr};
use crate::support::moto::{AMI, AccountCredentials, MotoOrg, lambda_zip};

const REGION: &str = "us-east-1";

/// Launches one instance of `instance_type` whose root volume is an 8 GiB gp3 one.
async fn instance(org: &MotoOrg, account: &AccountCredentials, instance_type: &str) -> String {
    aws_sdk_ec2::Client::new(&org.config(account, REGION))
        .run_instances()
        .image_id(AMI)
        .min_count(1)
        .max_count(1)
        .instance_type(instance_type.into())
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sda1")
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(8)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunInstances")
        .instances
        .unwrap_or_default()
        .into_iter()
        .find_map(|i| i.instance_id)
        .expect("instance id")
}

/// The findings of a report as `(kind, resource_id, monthly_estimate)`, in report order.
fn findings(report: &Value) -> Vec<(String, String, Value)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["resource_id"].as_str().unwrap_or_default().to_owned(),
                f["monthly_estimate"].clone(),
            )
        })
        .collect()
}

fn finding<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|f| f["resource_id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {report}"))
}

#[tokio::test]
async fn exactly_the_seeded_waste_is_found_each_priced_from_the_table() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let m = &org.management;
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, REGION));

    // Waste, one of each kind.
    let unattached = org
        .create_volume(m, REGION, 100, VolumeType::Gp2, &[("service", "billing")])
        .await;
    let idle = ec2
        .allocate_address()
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id
        .expect("allocation id");
    let gone = org.create_volume(m, REGION, 20, VolumeType::Gp3, &[]).await;
    let orphan = org.create_snapshot(m, REGION, &gone, &[]).await;
    org.delete_volume(m, REGION, &gone).await;
    let stopped = instance(org, m, "t3.micro").await;
    org.stop_instances(m, REGION, std::slice::from_ref(&stopped))
        .await;
    let previous = instance(org, m, "m4.large").await;
    let current = instance(org, m, "t3.micro").await;
    let gp2 = org.create_volume(m, REGION, 50, VolumeType::Gp2, &[]).await;
    ec2.attach_volume()
        .volume_id(&gp2)
        .instance_id(&current)
        .device("/dev/sdf")
        .send()
        .await
        .expect("AttachVolume");
    let role = org.create_role(m, "lambda-exec").await;
    let zip = lambda_zip();
    org.create_function(m, REGION, &role, "legacy", "python3.8", 128, 3, &zip)
        .await;
    org.create_db_instance(
        m,
        REGION,
        "dormant",
        "postgres",
        "db.t3.micro",
        20,
        false,
        &[("service", "billing")],
    )
    .await;
    aws_sdk_rds::Client::new(&org.config(m, REGION))
        .stop_db_instance()
        .db_instance_identifier("dormant")
        .send()
        .await
        .expect("StopDBInstance");
    org.create_db_instance(m, REGION, "live", "postgres", "db.t3.micro", 20, false, &[])
        .await;
    aws_sdk_rds::Client::new(&org.config(m, REGION))
        .create_db_snapshot()
        .db_instance_identifier("live")
        .db_snapshot_identifier("live-before-upgrade")
        .send()
        .await
        .expect("CreateDBSnapshot");

    // Healthy look-alikes: an associated address, a snapshot of a live volume, the snapshot
    // behind a registered AMI, a supported runtime (and the instances' gp3 roots, the
    // current-generation instance and the running database above).
    let associated = ec2
        .allocate_address()
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id
        .expect("allocation id");
    ec2.associate_address()
        .allocation_id(&associated)
        .instance_id(&current)
        .send()
        .await
        .expect("AssociateAddress");
    let live_snapshot = org.create_snapshot(m, REGION, &gp2, &[]).await;
    let ami = ec2
        .register_image()
        .name("golden")
        .root_device_name("/dev/sda1")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sda1")
                .ebs(EbsBlockDevice::builder().snapshot_id(&orphan).build())
                .build(),
        )
        .send()
        .await
        .expect("RegisterImage")
        .image_id
        .expect("image id");
    let behind_ami = ec2
        .describe_images()
        .image_ids(&ami)
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .first()
        .and_then(|i| i.block_device_mappings().first())
        .and_then(|b| b.ebs())
        .and_then(|e| e.snapshot_id())
        .expect("the image's snapshot")
        .to_owned();
    org.create_function(m, REGION, &role, "modern", "python3.12", 128, 3, &zip)
        .await;
    pincher.ok(&[
        "services",
        "create",
        "--name",
        "billing",
        "--owner",
        "payments",
        "--tag",
        "service=billing",
    ]);

    let at_zero = [
        "aws",
        "savings",
        "report",
        "--snapshot-age-days",
        "0",
        "--stopped-days",
        "0",
        "--database-snapshot-age-days",
        "0",
    ];
    let report = pincher.json(&at_zero);
    assert_eq!(report["kind"], "aws.savings");
    assert_eq!(report["errors"], json!([]));
    // Cost Explorer has nothing for last month here: the bill is named as missing, not zero.
    assert_eq!(report["summary"]["billed"], Value::Null);
    assert!(
        report["summary"]["billed_unavailable"]
            .as_str()
            .is_some_and(|why| why.contains("no UnblendedCost")),
        "{}",
        report["summary"]
    );
    // Each figure is the embedded table's us-east-1 price (730 hours a month), in order of
    // money; ties by kind, then the risk last.
    let expected = vec![
        // gp2 at 0.10 per GB-month × 100 GiB.
        ("unattached-volume", unattached.clone(), json!("10.00")),
        // An idle public IPv4 address at 0.005 per hour.
        ("idle-address", idle.clone(), json!("3.65")),
        // m4.large 0.10/h against m5.large 0.096/h: 73.00 − 70.08.
        ("previous-generation", previous.clone(), json!("2.92")),
        // 20 GiB of gp3 RDS storage at 0.115.
        ("stopped-database", "dormant".to_owned(), json!("2.30")),
        // 20 GiB at the RDS snapshot price, 0.095.
        (
            "old-database-snapshot",
            "live-before-upgrade".to_owned(),
            json!("1.90"),
        ),
        // 20 GiB at the EBS snapshot price, 0.05.
        ("orphaned-snapshot", orphan.clone(), json!("1.00")),
        // 50 GiB as gp2 (5.00) against gp3 (4.00).
        ("gp2-volume", gp2.clone(), json!("1.00")),
        // Its 8 GiB gp3 root volume at 0.08.
        ("stopped-instance", stopped.clone(), json!("0.64")),
        ("deprecated-runtime", "legacy".to_owned(), Value::Null),
    ];
    let expected: Vec<(String, String, Value)> = expected
        .into_iter()
        .map(|(kind, id, cost)| (kind.to_owned(), id, cost))
        .collect();
    assert_eq!(
        findings(&report),
        expected,
        "exactly the waste, by money; nothing healthy ({associated}, {live_snapshot}, \
         {behind_ami}, {current}, live, modern) flagged"
    );

    let volume = finding(&report, &unattached);
    assert_eq!(volume["account"], json!(m.account));
    assert_eq!(volume["region"], REGION);
    assert_eq!(volume["service"], "billing");
    assert_eq!(volume["age_days"], 0);
    assert!(
        volume["why"]
            .as_str()
            .is_some_and(|w| w.contains("100 GiB"))
    );
    assert!(
        volume["fix"]
            .as_str()
            .is_some_and(|f| f.contains("ec2:DeleteVolume"))
    );
    let runtime = finding(&report, "legacy");
    assert_eq!(runtime["risk"], true);
    assert_eq!(runtime["unpriced"], Value::Null);
    assert!(
        runtime["why"]
            .as_str()
            .is_some_and(|w| w.contains("python3.8 deprecated since 2024-10-14"))
    );
    let stopped_finding = finding(&report, &stopped);
    // The stop time is read from moto's state-transition reason.
    assert_eq!(stopped_finding["age_days"], 0, "{stopped_finding}");
    assert!(
        finding(&report, &previous)["why"]
            .as_str()
            .is_some_and(|w| w.contains("m5.large"))
    );
    assert_eq!(finding(&report, "dormant")["service"], "billing");

    let summary = &report["summary"];
    assert_eq!(summary["findings"], 9);
    assert_eq!(summary["estimated_monthly"], "23.41");
    assert_eq!(summary["risks"], 1);
    assert_eq!(summary["unpriced"], json!([]));
    assert_eq!(
        summary["by_kind"]["unattached-volume"],
        json!({"findings": 1, "estimated_monthly": "10.00"})
    );
    assert_eq!(
        summary["by_kind"]["deprecated-runtime"],
        json!({"findings": 1, "estimated_monthly": "0"})
    );
    assert_eq!(
        summary["by_service"]["billing"],
        json!({"findings": 2, "estimated_monthly": "12.30"})
    );
    assert_eq!(summary["by_service"]["(none)"]["findings"], 7);
    assert_eq!(
        summary["by_account"][&m.account]["estimated_monthly"],
        "23.41"
    );
    assert_eq!(
        summary["thresholds"],
        json!({"snapshot_age_days": 0, "stopped_days": 0, "database_snapshot_age_days": 0})
    );
    assert_eq!(summary["prices"]["table"], "embedded");

    // At the default thresholds the young snapshot, the just-stopped instance and the new
    // DB snapshot are not waste yet.
    let defaults = pincher.json(&["aws", "savings", "report"]);
    let kinds: Vec<String> = findings(&defaults).into_iter().map(|f| f.0).collect();
    assert_eq!(
        kinds,
        [
            "unattached-volume",
            "idle-address",
            "previous-generation",
            "stopped-database",
            "gp2-volume",
            "deprecated-runtime"
        ]
    );
    assert_eq!(
        defaults["summary"]["thresholds"],
        json!({"snapshot_age_days": 30, "stopped_days": 14, "database_snapshot_age_days": 90})
    );
    // The thresholds are settings too.
    let from_settings = pincher
        .command()
        .env("PINCHER_SAVINGS__STOPPED_DAYS", "0")
        .args([
            "aws",
            "savings",
            "report",
            "--kind",
            "stopped-instance",
            "--output",
            "json",
        ])
        .output()
        .expect("run");
    assert_eq!(
        from_settings.status.code(),
        Some(0),
        "{}",
        stderr(&from_settings)
    );
    let from_settings: Value = serde_json::from_slice(&from_settings.stdout).expect("json");
    assert_eq!(
        findings(&from_settings),
        [(
            "stopped-instance".to_owned(),
            stopped.clone(),
            json!("0.64")
        )]
    );

    // --kind, --tag and --service select.
    let two = pincher.json(&[
        "aws",
        "savings",
        "report",
        "--kind",
        "idle-address,unattached-volume",
    ]);
    assert_eq!(two["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        two["summary"]["by_kind"].as_object().map(|k| k.len()),
        Some(2),
        "only the kinds asked for"
    );
    let billing = pincher.json(&["aws", "savings", "report", "--service", "billing"]);
    let ids: Vec<String> = findings(&billing).into_iter().map(|f| f.1).collect();
    assert_eq!(ids, [unattached.clone(), "dormant".to_owned()]);
    let tagged = pincher.json(&["aws", "savings", "report", "--tag", "service=billing"]);
    assert_eq!(findings(&tagged).len(), 2);

    // The table leads with the money.
    let table = pincher.ok(&["aws", "savings", "report", "--output", "table"]);
    let first = table
        .lines()
        .filter(|l| !l.starts_with("by "))
        .find(|l| l.contains("unattached-volume") || l.contains("idle-address"))
        .unwrap_or_default();
    assert!(first.contains("10.00"), "{table}");
    assert!(table.contains("risk"), "{table}");

    // A bad threshold is refused, naming it.
    let bad = pincher.run(&["aws", "savings", "report", "--stopped-days=-1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("stopped_days"), "{}", stderr(&bad));

    // Over HTTP, the same findings.
    let server = pincher.serve();
    let response = server
        .get(
            "/reports/aws/savings?kind=orphaned-snapshot,idle-address&snapshot_age_days=0",
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let over_http: Value = response.json().await.expect("json");
    assert_eq!(
        findings(&over_http),
        [
            ("idle-address".to_owned(), idle.clone(), json!("3.65")),
            (
                "orphaned-snapshot".to_owned(),
                orphan.clone(),
                json!("1.00")
            ),
        ]
    );
    // The HTML page draws the waste by kind, largest first, above the table.
    let page = server
        .get(
            "/reports/aws/savings?snapshot_age_days=0",
            Some("text/html"),
        )
        .await
        .text()
        .await
        .expect("html");
    let start = page
        .find("Estimated monthly waste by kind")
        .unwrap_or_else(|| panic!("no chart in {page}"));
    let chart = &page[start..start + page[start..].find("</svg>").expect("end of the chart")];
    let unattached_bar = chart.find("<title>unattached-volume: 10.00</title>");
    let orphan_bar = chart.find("<title>orphaned-snapshot: 1.00</title>");
    assert!(
        chart.contains(">USD per month</text>"),
        "the y axis: {chart}"
    );
    assert!(
        unattached_bar.is_some() && orphan_bar.is_some() && unattached_bar < orphan_bar,
        "{chart}"
    );
    assert!(
        !chart.contains("<title>deprecated-runtime"),
        "risks have no bar: {chart}"
    );
    let refused = server
        .get(
            "/reports/aws/savings?database_snapshot_age_days=99999",
            None,
        )
        .await;
    assert_eq!(refused.status().as_u16(), 400);
    let problem: Value = refused.json().await.expect("problem");
    assert!(
        problem.to_string().contains("database_snapshot_age_days"),
        "{problem}"
    );
}

/// The value of the series `series` (name and labels, exactly as exposed) in `/metrics`.
async fn metric(server: &crate::harness::Server, series: &str) -> Option<f64> {
    let text = server
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn the_last_full_savings_run_feeds_the_metrics_of_every_replica() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let m = &org.management;
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, REGION));
    ec2.allocate_address()
        .send()
        .await
        .expect("AllocateAddress");
    org.create_volume(m, REGION, 100, VolumeType::Gp2, &[])
        .await;
    let first = pincher.serve_as("write");
    let second = pincher.serve();
    let findings_of = |kind: &str| format!("pincher_savings_findings{{kind=\"{kind}\"}}");
    let waste_of = |kind: &str| format!("pincher_savings_estimated_monthly_usd{{kind=\"{kind}\"}}");

    // A report narrowed by tag is not the whole picture: the gauges stay away.
    let narrowed = first
        .get("/reports/aws/savings?tag=service=billing", None)
        .await;
    assert_eq!(narrowed.status().as_u16(), 200);
    assert_eq!(metric(&first, &findings_of("idle-address")).await, None);

    // A full report served by one replica shows in its metrics, kind by kind.
    let full = first
        .get(
            "/reports/aws/savings?kind=idle-address,unattached-volume",
            None,
        )
        .await;
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(
        metric(&first, &findings_of("idle-address")).await,
        Some(1.0)
    );
    assert_eq!(metric(&first, &waste_of("idle-address")).await, Some(3.65));
    assert_eq!(
        metric(&first, &waste_of("unattached-volume")).await,
        Some(10.0)
    );
    assert_eq!(metric(&first, &findings_of("gp2-volume")).await, None);

    // A recorded run (as a rule's step would be) reaches the other replica through the
    // database; only the kinds it looked for are replaced.
    ec2.allocate_address()
        .send()
        .await
        .expect("AllocateAddress");
    let run = first
        .client
        .post(format!("{}/actions/aws.savings.report/runs", first.base))
        .json(&json!({"kinds": ["idle-address"]}))
        .send()
        .await
        .expect("run");
    assert_eq!(run.status().as_u16(), 201);
    assert_eq!(
        metric(&second, &findings_of("idle-address")).await,
        Some(2.0)
    );
    assert_eq!(metric(&second, &waste_of("idle-address")).await, Some(7.3));
    assert_eq!(
        metric(&second, &findings_of("unattached-volume")).await,
        None
    );
    let last_run = metric(&second, "pincher_savings_last_run_timestamp_seconds")
        .await
        .expect("last run");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((now - last_run).abs() < 300.0, "{last_run} vs {now}");
    // The first replica, which ran it, shows it too.
    assert_eq!(
        metric(&first, &findings_of("idle-address")).await,
        Some(2.0)
    );
}

#[tokio::test]
async fn the_summary_shows_last_months_bill_for_context() {
    let pincher = Pincher::new(0).await;
    let today = time::OffsetDateTime::now_utc().date();
    let end = today.replace_day(1).expect("first of the month");
    let start = (end - time::Duration::days(1))
        .replace_day(1)
        .expect("first of last month");
    pincher
        .org
        .queue_cost_results(vec![json!({"ResultsByTime": [{
            "TimePeriod": {"Start": start.to_string(), "End": end.to_string()},
            "Total": {"UnblendedCost": {"Amount": "1234.56", "Unit": "USD"}},
            "Groups": [],
            "Estimated": false,
        }]})])
        .await;
    let report = pincher.json(&["aws", "savings", "report", "--kind", "idle-address"]);
    assert_eq!(
        report["summary"]["billed"],
        json!({
            "period": {"start": start.to_string(), "end": end.to_string()},
            "metric": "UnblendedCost",
            "amount": "1234.56",
            "unit": "USD",
            "estimated": false,
        })
    );
    assert_eq!(report["summary"]["billed_unavailable"], Value::Null);

    // Turned off, Cost Explorer is not asked.
    let output = pincher
        .command()
        .env("PINCHER_SAVINGS__BILLED_TOTAL", "false")
        .args(["aws", "savings", "report", "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let quiet: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(quiet["summary"]["billed"], Value::Null);
    assert_eq!(quiet["summary"]["billed_unavailable"], Value::Null);
}
