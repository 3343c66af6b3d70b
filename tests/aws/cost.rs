//! `pincher aws ce report` and `GET /reports/aws/ce` on moto's seeded Cost Explorer results.

use serde_json::{Value, json};

use crate::harness::{Pincher, stderr};
use crate::support::ce_forecast::ForecastProxy;
use crate::support::moto::{ce_groups, ce_total as total, check_well_formed_html};

fn month(start: &str, end: &str, groups: &[(&str, &str)], estimated: bool) -> Value {
    ce_groups(start, end, "UnblendedCost", groups, estimated)
}

const PERIOD: [&str; 4] = ["--start", "2026-09-01", "--end", "2026-11-01"];

#[tokio::test]
async fn cost_by_service_with_change_and_top_movers() {
    let pincher = Pincher::new(0).await;
    pincher
        .org
        .queue_cost_results(vec![
            json!({"ResultsByTime": [
                month("2026-09-01", "2026-10-01", &[("Amazon EC2", "100.10"), ("Amazon S3", "20.05")], false),
                month("2026-10-01", "2026-11-01", &[("Amazon EC2", "150.20"), ("Amazon S3", "10.00")], true),
            ]}),
            json!({"ResultsByTime": [
                month("2026-07-01", "2026-08-01", &[("Amazon EC2", "90.00"), ("Amazon S3", "20.00")], false),
                month("2026-08-01", "2026-09-01", &[("Amazon EC2", "90.00"), ("Amazon RDS", "5.5")], false),
            ]}),
        ])
        .await;
    let mut args = vec!["aws", "ce", "report", "--group-by", "service"];
    args.extend(PERIOD);
    let report = pincher.json(&args);
    assert_eq!(report["kind"], "aws.ce");
    assert_eq!(report["errors"], json!([]));
    assert_eq!(
        report["scope"]["period"],
        json!({"start": "2026-09-01", "end": "2026-11-01"})
    );
    assert_eq!(
        report["rows"],
        json!([
            {"start": "2026-09-01", "end": "2026-10-01", "group": "Amazon EC2", "amount": "100.10", "unit": "USD", "estimated": false},
            {"start": "2026-09-01", "end": "2026-10-01", "group": "Amazon S3", "amount": "20.05", "unit": "USD", "estimated": false},
            {"start": "2026-10-01", "end": "2026-11-01", "group": "Amazon EC2", "amount": "150.20", "unit": "USD", "estimated": true},
            {"start": "2026-10-01", "end": "2026-11-01", "group": "Amazon S3", "amount": "10.00", "unit": "USD", "estimated": true},
        ])
    );
    assert_eq!(
        report["summary"],
        json!({
            "metric": "UnblendedCost",
            "unit": "USD",
            "total": "280.35",
            "previous_period": {"start": "2026-07-01", "end": "2026-09-01"},
            "previous_total": "205.50",
            "change": "74.85",
            "change_percent": "36.42",
            "by_group": {"Amazon EC2": "250.30", "Amazon S3": "30.05"},
            "top_movers": [
                {"group": "Amazon EC2", "current": "250.30", "previous": "180.00", "change": "70.30"},
                {"group": "Amazon S3", "current": "30.05", "previous": "20.00", "change": "10.05"},
                {"group": "Amazon RDS", "current": "0", "previous": "5.5", "change": "-5.5"},
            ],
            "forecast": null,
        })
    );

    let mut html_args = args.clone();
    html_args.extend(["--output", "html"]);
    let html = pincher.ok(&html_args);
    check_well_formed_html(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        html.contains("<svg") && html.contains("Cost over time"),
        "{html}"
    );
    assert!(html.contains("2026-10: 160.20"), "{html}");
    assert!(
        html.contains(">UnblendedCost (USD)</text>"),
        "the y axis says what and in what: {html}"
    );
    assert!(!html.contains("http://") && !html.contains("https://"));

    let mut csv_args = args.clone();
    csv_args.extend(["--output", "csv"]);
    let csv_text = pincher.ok(&csv_args);
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.expect("record"))
        .collect();
    assert_eq!(records.len(), 4);
    assert_eq!(&records[2][3], "150.20");

    let server = pincher.serve();
    let http: Value = server
        .get(
            "/reports/aws/ce?start=2026-09-01&end=2026-11-01&group_by=service",
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(http["summary"], report["summary"]);
    assert_eq!(http["rows"], report["rows"]);
    let svg = server
        .get(
            "/reports/aws/ce?start=2026-09-01&end=2026-11-01&group_by=service&format=html",
            None,
        )
        .await
        .text()
        .await
        .expect("html");
    assert!(svg.contains("<svg"));
    for bad in [
        "metric=Dollars",
        "group_by=color",
        "start=yesterday",
        "start=2026-11-01&end=2026-10-01",
    ] {
        let response = server.get(&format!("/reports/aws/ce?{bad}"), None).await;
        assert_eq!(response.status(), 400, "{bad}");
    }

    let mut forecast = args.clone();
    forecast.extend(["--forecast", "--output", "json"]);
    let output = pincher.run(&forecast);
    assert_eq!(
        output.status.code(),
        Some(3),
        "moto has no GetCostForecast: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("group forecast"),
        "{}",
        stderr(&output)
    );
    let partial: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(partial["summary"]["total"], "280.35");
    assert_eq!(partial["errors"][0]["group"], "forecast");
}

fn first_of_next_month(day: time::Date) -> time::Date {
    let (year, month) = match day.month() {
        time::Month::December => (day.year() + 1, time::Month::January),
        month => (day.year(), month.next()),
    };
    time::Date::from_calendar_date(year, month, 1).expect("a date")
}

/// moto has no GetCostForecast: a proxy in front of it answers that one call the way AWS
/// does, and everything else still comes from moto.
#[tokio::test]
async fn forecast_of_the_rest_of_the_month() {
    let mut pincher = Pincher::new(0).await;
    pincher
        .org
        .queue_cost_results(vec![
            json!({"ResultsByTime": [total("2026-10-01", "2026-11-01", "40")]}),
            json!({"ResultsByTime": [total("2026-09-01", "2026-10-01", "50")]}),
        ])
        .await;
    let proxy = ForecastProxy::start(&pincher.org.url, "312.47", "USD");
    pincher.endpoint = Some(proxy.url.clone());
    let today = time::OffsetDateTime::now_utc().date();
    let next_month = first_of_next_month(today);
    let args = [
        "aws",
        "ce",
        "report",
        "--start",
        "2026-10-01",
        "--end",
        "2026-11-01",
        "--forecast",
    ];

    let report = pincher.json(&args);
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["summary"]["total"], "40");
    assert_eq!(report["summary"]["previous_total"], "50");
    assert_eq!(
        report["summary"]["forecast"],
        json!({
            "start": today.to_string(),
            "end": next_month.to_string(),
            "amount": "312.47",
            "unit": "USD",
        })
    );
    assert_eq!(
        proxy.forecast_requests(),
        vec![json!({
            "TimePeriod": {"Start": today.to_string(), "End": next_month.to_string()},
            "Granularity": "MONTHLY",
            "Metric": "UNBLENDED_COST",
        })]
    );

    let mut table = args.to_vec();
    table.extend(["--output", "table"]);
    let text = pincher.ok(&table);
    let line = text
        .lines()
        .find(|l| l.contains("forecast.amount"))
        .unwrap_or_else(|| panic!("no forecast in the table: {text}"));
    assert!(line.contains("312.47"), "{line}");

    let server = pincher.serve();
    let http: Value = server
        .get(
            "/reports/aws/ce?start=2026-10-01&end=2026-11-01&forecast=true",
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(http["summary"]["forecast"], report["summary"]["forecast"]);
    assert_eq!(proxy.forecast_requests().len(), 3);
}

#[tokio::test]
async fn cost_by_registered_service() {
    let pincher = Pincher::new(0).await;
    pincher.register("billing", "pay", &["service=billing"]);
    pincher.ok(&[
        "services",
        "create",
        "--name",
        "search",
        "--owner",
        "find",
        "--tag",
        "service=search",
        "--tag",
        "env=prod",
    ]);
    pincher.ok(&[
        "services", "create", "--name", "untagged", "--owner", "none",
    ]);
    pincher
        .org
        .queue_cost_results(vec![
            json!({"ResultsByTime": [total("2026-10-01", "2026-11-01", "12.5")]}),
            json!({"ResultsByTime": [total("2026-10-01", "2026-11-01", "40")]}),
            json!({"ResultsByTime": [total("2026-09-01", "2026-10-01", "10")]}),
            json!({"ResultsByTime": [total("2026-09-01", "2026-10-01", "50")]}),
        ])
        .await;
    let report = pincher.json(&[
        "aws",
        "ce",
        "report",
        "--start",
        "2026-10-01",
        "--end",
        "2026-11-01",
        "--group-by",
        "registered-service",
        "--metric",
        "UnblendedCost",
    ]);
    assert_eq!(report["errors"], json!([]));
    let summary = &report["summary"];
    assert_eq!(
        summary["by_group"],
        json!({"billing": "12.5", "search": "40"})
    );
    assert_eq!(summary["total"], "52.5");
    assert_eq!(summary["previous_total"], "60");
    assert_eq!(summary["change"], "-7.5");
    assert_eq!(summary["change_percent"], "-12.50");
    assert_eq!(summary["top_movers"][0]["group"], "search");
    assert_eq!(summary["top_movers"][0]["change"], "-10");
    assert_eq!(summary["top_movers"][1]["group"], "billing");
    assert_eq!(report["scope"]["filters"]["group_by"], "registered-service");
}

#[tokio::test]
async fn a_service_report_lists_its_resources_and_cost() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let m = &org.management;
    pincher.register("billing", "pay", &["service=billing"]);
    let ids = org
        .run_instances(
            m,
            "us-east-1",
            2,
            "t3.micro",
            &[("service", "billing"), ("Name", "web")],
        )
        .await;
    org.run_instances(m, "us-east-1", 1, "t3.micro", &[("service", "other")])
        .await;
    org.create_db_instance(
        m,
        "us-east-1",
        "billing-db",
        "postgres",
        "db.t3.micro",
        20,
        false,
        &[("service", "billing")],
    )
    .await;
    org.create_db_instance(
        m,
        "us-east-1",
        "other-db",
        "postgres",
        "db.t3.micro",
        20,
        false,
        &[],
    )
    .await;
    let idle = org
        .create_volume(
            m,
            "us-east-1",
            100,
            aws_sdk_ec2::types::VolumeType::Gp2,
            &[("service", "billing")],
        )
        .await;
    org.create_volume(
        m,
        "us-east-1",
        10,
        aws_sdk_ec2::types::VolumeType::Gp2,
        &[("service", "other")],
    )
    .await;
    let role = org.create_role(m, "lambda-exec").await;
    let zip = crate::support::moto::lambda_zip();
    org.create_function(
        m,
        "us-east-1",
        &role,
        "invoicer",
        "python3.12",
        128,
        3,
        &zip,
    )
    .await;
    org.tag_function(m, "us-east-1", "invoicer", &[("service", "billing")])
        .await;
    org.create_function(
        m,
        "us-east-1",
        &role,
        "unrelated",
        "python3.12",
        128,
        3,
        &zip,
    )
    .await;
    org.queue_cost_results(vec![
        json!({"ResultsByTime": [total("2026-10-01", "2026-11-01", "42.00")]}),
        json!({"ResultsByTime": [total("2026-09-01", "2026-10-01", "40.00")]}),
    ])
    .await;

    let server = pincher.serve();
    let response = server
        .get(
            "/services/billing/report?start=2026-10-01&end=2026-11-01",
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["pincher-report-completeness"],
        "complete"
    );
    let report: Value = response.json().await.expect("JSON");
    assert_eq!(report["service"]["name"], "billing");
    let mut found: Vec<String> = report["ec2"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["instance_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    found.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(report["rds"]["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["rds"]["rows"][0]["identifier"], "billing-db");
    assert_eq!(report["cost"]["summary"]["total"], "42.00");
    assert_eq!(report["cost"]["summary"]["change"], "2.00");
    let column = |part: &str, field: &str| -> Vec<Value> {
        report[part]["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r[field].clone())
            .collect()
    };
    assert_eq!(column("ebs", "id"), [json!(idle)], "only its volume");
    assert_eq!(
        column("lambda", "name"),
        [json!("invoicer")],
        "only its function"
    );
    assert_eq!(
        column("savings", "resource_id"),
        [json!(idle)],
        "only its waste"
    );
    assert_eq!(report["savings"]["summary"]["estimated_monthly"], "10.00");

    let missing = server.get("/services/nope/report", None).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn daily_cost_by_tag_with_another_metric() {
    let pincher = Pincher::new(0).await;
    let day = |start: &str, end: &str, groups: &[(&str, &str)]| {
        ce_groups(start, end, "AmortizedCost", groups, false)
    };
    pincher
        .org
        .queue_cost_results(vec![
            json!({"ResultsByTime": [
                day("2026-11-02", "2026-11-03", &[("team$pay", "1.25"), ("team$", "0.75")]),
                day("2026-11-03", "2026-11-04", &[("team$pay", "2.00")]),
            ]}),
            json!({"ResultsByTime": [
                day("2026-10-31", "2026-11-01", &[("team$pay", "1.00")]),
                day("2026-11-01", "2026-11-02", &[("team$search", "3.00")]),
            ]}),
        ])
        .await;
    let report = pincher.json(&[
        "aws",
        "ce",
        "report",
        "--start",
        "2026-11-02",
        "--end",
        "2026-11-04",
        "--granularity",
        "daily",
        "--metric",
        "AmortizedCost",
        "--group-by",
        "tag:team",
    ]);
    assert_eq!(report["errors"], json!([]));
    assert_eq!(
        report["rows"],
        json!([
            {"start": "2026-11-02", "end": "2026-11-03", "group": "(untagged)", "amount": "0.75", "unit": "USD", "estimated": false},
            {"start": "2026-11-02", "end": "2026-11-03", "group": "pay", "amount": "1.25", "unit": "USD", "estimated": false},
            {"start": "2026-11-03", "end": "2026-11-04", "group": "pay", "amount": "2.00", "unit": "USD", "estimated": false},
        ])
    );
    let summary = &report["summary"];
    assert_eq!(summary["metric"], "AmortizedCost");
    assert_eq!(
        summary["previous_period"],
        json!({"start": "2026-10-31", "end": "2026-11-02"})
    );
    assert_eq!(summary["total"], "4.00");
    assert_eq!(summary["previous_total"], "4.00");
    assert_eq!(summary["change"], "0.00");
    assert_eq!(summary["change_percent"], "0.00");
    assert_eq!(
        summary["top_movers"],
        json!([
            {"group": "search", "current": "0", "previous": "3.00", "change": "-3.00"},
            {"group": "pay", "current": "3.25", "previous": "1.00", "change": "2.25"},
            {"group": "(untagged)", "current": "0.75", "previous": "0", "change": "0.75"},
        ])
    );
    assert_eq!(
        report["scope"]["filters"],
        json!({"granularity": "daily", "group_by": "tag:team", "metric": "AmortizedCost"})
    );

    let usage = pincher.run(&[
        "aws", "ce", "report", "--metric", "Dollars", "--output", "json",
    ]);
    assert_eq!(usage.status.code(), Some(2), "a bad value is a usage error");
    assert!(
        stderr(&usage).contains("UnblendedCost"),
        "{}",
        stderr(&usage)
    );
}
