//! `pincher aws ec2 report` and `GET /reports/aws/ec2` on moto: two accounts (Organizations
//! + assumed role) × two regions, every filter, every format, paging and partial failure.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{Pincher, stderr};
use crate::support::moto::{check_well_formed_html, tag_map};

const REGIONS: &str = "us-east-1,eu-west-1";

/// Name, account, region, type and tags of one seeded instance.
type Seed<'a> = (
    &'static str,
    &'a crate::support::moto::AccountCredentials,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// What the standard fixture holds, by instance name.
struct Fixture {
    pincher: Pincher,
    /// name → (account, region, instance id)
    instances: BTreeMap<&'static str, (String, &'static str, String)>,
}

impl Fixture {
    fn account_of(&self, name: &str) -> &str {
        &self.instances[name].0
    }
}

/// Management account: web-1 and web-2 (us-east-1, billing/prod), batch (eu-west-1, stopped).
/// Member account: api (us-east-1, billing/dev) and worker (eu-west-1, search).
/// Services: billing {service=billing}, billing-prod {service=billing, env=prod},
/// search {service=search}.
async fn fixture() -> Fixture {
    let pincher = Pincher::new(1).await;
    let org = &pincher.org;
    let (m, a) = (&org.management, &org.members[0]);
    let mut instances = BTreeMap::new();
    let seeds: [Seed; 5] = [
        (
            "web-1",
            m,
            "us-east-1",
            "t3.micro",
            &[("service", "billing"), ("env", "prod")],
        ),
        (
            "web-2",
            m,
            "us-east-1",
            "t3.micro",
            &[("service", "billing"), ("env", "prod")],
        ),
        ("batch", m, "eu-west-1", "t3.small", &[("team", "data")]),
        (
            "api",
            a,
            "us-east-1",
            "m5.large",
            &[("service", "billing"), ("env", "dev")],
        ),
        (
            "worker",
            a,
            "eu-west-1",
            "t3.micro",
            &[("service", "search")],
        ),
    ];
    for (name, account, region, instance_type, tags) in seeds {
        let mut tags = tags.to_vec();
        tags.push(("Name", name));
        let ids = org
            .run_instances(account, region, 1, instance_type, &tags)
            .await;
        instances.insert(name, (account.account.clone(), region, ids[0].clone()));
    }
    let (_, region, id) = &instances["batch"];
    org.stop_instances(m, region, std::slice::from_ref(id))
        .await;
    pincher.ok(&[
        "services",
        "create",
        "--name",
        "billing",
        "--owner",
        "pay",
        "--tag",
        "service=billing",
    ]);
    pincher.ok(&[
        "services",
        "create",
        "--name",
        "billing-prod",
        "--owner",
        "pay",
        "--tag",
        "service=billing",
        "--tag",
        "env=prod",
    ]);
    pincher.ok(&[
        "services",
        "create",
        "--name",
        "search",
        "--owner",
        "find",
        "--tag",
        "service=search",
    ]);
    Fixture { pincher, instances }
}

fn names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

fn report(f: &Fixture, extra: &[&str]) -> Value {
    let mut args = vec![
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "ec2",
        "report",
    ];
    args.extend(extra);
    f.pincher.json(&args)
}

/// On a terminal the fan-out draws a bar on stderr and clears it; stdout carries only the
/// report. `script` gives the command a real pseudo-terminal.
#[tokio::test]
async fn progress_bar_on_a_terminal_only() {
    let pincher = Pincher::new(1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report.json");
    let shell = format!(
        "stty cols 100 rows 30; exec {} aws --all-accounts --regions {REGIONS} ec2 report --output json > {}",
        env!("CARGO_BIN_EXE_pincher"),
        out.display()
    );
    let output = pincher
        .command_of("script")
        .args(["--quiet", "--return", "--command", &shell, "/dev/null"])
        .env("TERM", "xterm-256color")
        .output()
        .expect("run script (util-linux)");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{terminal}");
    assert!(
        terminal.contains("EC2 ") && terminal.contains("/4"),
        "a progress bar over the 4 account × region pairs: {terminal:?}"
    );
    assert!(
        terminal.contains('\u{1b}'),
        "the bar is drawn and cleared with terminal escapes: {terminal:?}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&out).expect("report file"))
        .expect("stdout is JSON only");
    assert_eq!(report["attempted"], 4);
    assert_eq!(report["errors"], json!([]));
}

#[tokio::test]
async fn instances_of_every_account_and_region_with_their_services() {
    let f = fixture().await;
    let output = f.pincher.run(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "ec2",
        "report",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "no progress bar when stderr is not a terminal: {}",
        stderr(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["kind"], "aws.ec2");
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["attempted"], 4);
    let mut accounts = vec![
        f.pincher.org.management.account.clone(),
        f.pincher.org.members[0].account.clone(),
    ];
    accounts.sort();
    assert_eq!(report["scope"]["accounts"], json!(accounts));
    assert_eq!(
        report["scope"]["regions"],
        json!(["eu-west-1", "us-east-1"])
    );

    let rows = report["rows"].as_array().expect("rows");
    let keys: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap_or_default().to_owned(),
                r["region"].as_str().unwrap_or_default().to_owned(),
                r["instance_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys, sorted,
        "rows are ordered by account, region, instance"
    );

    let expected = [
        ("web-1", "running", "t3.micro", Some("billing-prod")),
        ("web-2", "running", "t3.micro", Some("billing-prod")),
        ("batch", "stopped", "t3.small", None),
        ("api", "running", "m5.large", Some("billing")),
        ("worker", "running", "t3.micro", Some("search")),
    ];
    assert_eq!(rows.len(), expected.len());
    for (name, state, instance_type, service) in expected {
        let row = rows
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {report}"));
        let (account, region, id) = &f.instances[name];
        assert_eq!(row["account"], json!(account), "{name}");
        assert_eq!(row["region"], json!(region), "{name}");
        assert_eq!(row["instance_id"], json!(id), "{name}");
        assert_eq!(row["state"], state, "{name}");
        assert_eq!(row["instance_type"], instance_type, "{name}");
        assert_eq!(row["service"], json!(service), "{name}");
        assert_eq!(row["lifecycle"], "on-demand", "{name}");
        assert_eq!(row["age_days"], 0, "{name}");
        assert!(row["launch_time"].is_string(), "{row}");
        assert!(
            row["availability_zone"]
                .as_str()
                .is_some_and(|az| az.starts_with(region)),
            "{row}"
        );
        assert!(row["private_ip"].is_string(), "{row}");
        assert!(row.get("tags").is_none(), "tags only on request: {row}");
    }
    assert_eq!(
        report["summary"],
        json!({
            "total": 5,
            "by_state": {"running": 4, "stopped": 1},
            "by_type": {"m5.large": 1, "t3.micro": 3, "t3.small": 1},
            "by_region": {"eu-west-1": 2, "us-east-1": 3},
        })
    );
}

#[tokio::test]
async fn every_filter_narrows_the_rows() {
    let f = fixture().await;
    let by = |extra: &[&str]| names(&report(&f, extra));
    assert_eq!(
        by(&["--state", "running"]),
        ["api", "web-1", "web-2", "worker"]
    );
    assert_eq!(by(&["--state", "stopped"]), ["batch"]);
    assert_eq!(by(&["--type", "t3.micro"]), ["web-1", "web-2", "worker"]);
    assert_eq!(
        by(&["--type", "t3.small", "--type", "m5.large"]),
        ["api", "batch"]
    );
    assert_eq!(by(&["--tag", "env=prod"]), ["web-1", "web-2"]);
    assert_eq!(
        by(&["--tag", "service=billing", "--tag", "env=dev"]),
        ["api"]
    );
    assert_eq!(
        by(&["--tag", "env=prod", "--tag", "env=dev"]),
        ["api", "web-1", "web-2"]
    );
    assert_eq!(by(&["--service", "billing"]), ["api"]);
    assert_eq!(by(&["--service", "billing-prod"]), ["web-1", "web-2"]);
    assert_eq!(
        by(&["--service", "search", "--state", "running"]),
        ["worker"]
    );
    assert_eq!(
        by(&["--state", "running", "--type", "t3.small"]),
        Vec::<String>::new()
    );

    let one = f
        .pincher
        .json(&["aws", "--region", "eu-west-1", "ec2", "report"]);
    assert_eq!(
        names(&one),
        ["batch"],
        "the current account only, one region"
    );
    let listed = f.pincher.json(&[
        "aws",
        "--accounts",
        f.account_of("api"),
        "--regions",
        REGIONS,
        "ec2",
        "report",
    ]);
    assert_eq!(names(&listed), ["api", "worker"]);

    let tagged = report(&f, &["--tags", "--tag", "team=data"]);
    assert_eq!(
        tagged["rows"][0]["tags"],
        json!(tag_map(&[("Name", "batch"), ("team", "data")]))
    );
    let filters = &tagged["scope"]["filters"];
    assert_eq!(filters["tag"], "team=data");
    assert_eq!(filters["accounts"], "all");
    assert_eq!(filters["regions"], REGIONS);

    let missing = f.pincher.run(&[
        "aws",
        "ec2",
        "report",
        "--service",
        "nope",
        "--output",
        "json",
    ]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "an unknown service is a usage error"
    );
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn every_output_format_renders_the_same_rows() {
    let f = fixture().await;
    let base = [
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "ec2",
        "report",
    ];
    let with = |format: &str| {
        let mut args = base.to_vec();
        args.extend(["--output", format]);
        f.pincher.ok(&args)
    };

    let csv_text = with("csv");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        &header[..5],
        ["account", "region", "instance", "name", "state"]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), 5);
    let web = records
        .iter()
        .find(|r| &r[3] == "web-1")
        .expect("web-1 row");
    assert_eq!(&web[2], f.instances["web-1"].2);
    assert_eq!(&web[5], "t3.micro");
    assert_eq!(&web[13], "billing-prod");

    let json: Value = serde_json::from_str(&with("json")).expect("JSON");
    assert_eq!(json["summary"]["total"], 5);

    let markdown = with("markdown");
    assert!(markdown.starts_with("# EC2 instances"), "{markdown}");
    assert!(
        markdown.contains("| account | region | instance | name |"),
        "{markdown}"
    );
    assert_eq!(markdown.matches("| web-").count(), 2, "{markdown}");
    assert!(markdown.contains("| by_state.running | 4 |"), "{markdown}");

    let html = with("html");
    check_well_formed_html(&html).unwrap_or_else(|e| panic!("{e}: {html}"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    for name in f.instances.keys() {
        assert!(html.contains(&format!(">{name}</td>")), "{name}: {html}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );

    let table = with("table");
    assert!(
        table.contains("EC2 instances") && table.contains("worker"),
        "{table}"
    );
    assert!(table.contains("by_type.t3.micro"), "{table}");

    let out = f
        .pincher
        .database
        .dir
        .path()
        .join("reports")
        .join("ec2.html");
    let mut args = base.to_vec();
    args.extend(["--out", out.to_str().expect("path")]);
    let stdout = f.pincher.ok(&args);
    assert!(stdout.is_empty(), "{stdout}");
    let written = std::fs::read_to_string(&out).expect("the report file");
    check_well_formed_html(&written).unwrap_or_else(|e| panic!("{e}"));
    assert!(written.contains("web-1"));
}

#[tokio::test]
async fn all_regions_reads_every_enabled_region() {
    let f = fixture().await;
    let report = f
        .pincher
        .json(&["aws", "--all-accounts", "--all-regions", "ec2", "report"]);
    assert_eq!(names(&report), ["api", "batch", "web-1", "web-2", "worker"]);
    let regions = report["scope"]["regions"].as_array().expect("regions");
    assert!(regions.len() > 10, "{regions:?}");
    assert!(
        !regions.contains(&json!("ap-east-1")),
        "not-opted-in regions are skipped"
    );
    assert_eq!(report["attempted"].as_u64(), Some(2 * regions.len() as u64));
    assert_eq!(report["errors"], json!([]));
}

#[tokio::test]
async fn pages_past_one_thousand_instances() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let launched: usize = futures::stream::iter(0..1005)
        .map(|i| async move {
            let name = format!("bulk-{i:04}");
            org.run_instances(
                &org.management,
                "us-west-2",
                1,
                "t3.nano",
                &[("Name", &name)],
            )
            .await
            .len()
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(launched, 1005);
    let report = pincher.json(&["aws", "--region", "us-west-2", "ec2", "report"]);
    let names = names(&report);
    assert_eq!(names.len(), 1005, "every page is read");
    assert_eq!(names[0], "bulk-0000");
    assert_eq!(names[1004], "bulk-1004");
    assert_eq!(report["summary"]["by_type"], json!({"t3.nano": 1005}));
    // Streamed, the part's rows go out a page's worth at a time: each exactly once.
    let lines: Vec<Value> = pincher
        .ok(&[
            "aws",
            "--region",
            "us-west-2",
            "ec2",
            "report",
            "--output",
            "jsonl",
        ])
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let mut streamed: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["row"]["name"].as_str())
        .collect();
    assert_eq!(streamed.len(), 1005, "one line per instance");
    streamed.sort_unstable();
    streamed.dedup();
    assert_eq!(streamed.len(), 1005, "no instance twice");
    let last = lines.last().expect("a report line");
    assert_eq!(last["report"]["summary"]["total"], 1005);
}

#[tokio::test]
async fn a_failing_account_or_region_is_named_and_exits_3() {
    let f = fixture().await;
    let member = f.account_of("api").to_owned();
    let accounts = format!("{member},999999999999");
    let output = f.pincher.run(&[
        "aws",
        "--accounts",
        &accounts,
        "--regions",
        "us-east-1,xx-fake-1",
        "ec2",
        "report",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("account 999999999999") && err.contains("not a member"),
        "{err}"
    );
    assert!(
        err.contains(&format!("account {member} region xx-fake-1")),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(names(&report), ["api"]);
    assert_eq!(report["attempted"], 3);
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e["account"] == "999999999999" && e["region"].is_null())
    );
    assert!(errors.iter().any(|e| {
        e["account"] == json!(member)
            && e["region"] == "xx-fake-1"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("ec2:DescribeInstances"))
    }));

    let output = f.pincher.run(&[
        "aws",
        "--region",
        "xx-fake-1",
        "ec2",
        "report",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "nothing could be read");
    let err = stderr(&output);
    assert!(
        err.contains("nothing could be read") && err.contains("xx-fake-1"),
        "{err}"
    );
}

#[tokio::test]
async fn the_http_report_is_the_cli_report() {
    let f = fixture().await;
    let server = f.pincher.serve();
    let query = format!("/reports/aws/ec2?all_accounts=true&regions={REGIONS}&state=running");

    let response = server.get(&query, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.headers()["pincher-report-completeness"],
        "complete"
    );
    let http: Value = response.json().await.expect("JSON");
    let cli = report(&f, &["--state", "running"]);
    assert_eq!(http["rows"], cli["rows"]);
    assert_eq!(http["summary"], cli["summary"]);
    assert_eq!(http["scope"], cli["scope"]);

    let by_service = server
        .get(
            &format!("{query}&service=billing-prod&tags=true&tag=env%3Dprod&type=t3.micro"),
            None,
        )
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(names(&by_service), ["web-1", "web-2"]);
    assert_eq!(by_service["rows"][0]["tags"]["env"], "prod");

    let csv_response = server.get(&format!("{query}&format=csv"), None).await;
    assert_eq!(
        csv_response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = csv_response.text().await.expect("text");
    assert_eq!(
        csv::Reader::from_reader(text.as_bytes()).records().count(),
        4
    );

    let html = server
        .get(&query, Some("text/html"))
        .await
        .text()
        .await
        .expect("text");
    check_well_formed_html(&html).unwrap_or_else(|e| panic!("{e}"));
    let markdown = server
        .get(&format!("{query}&format=markdown"), None)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        markdown.contains("| api |") || markdown.contains("api"),
        "{markdown}"
    );

    let partial = server
        .get("/reports/aws/ec2?regions=us-east-1,xx-fake-1", None)
        .await;
    assert_eq!(partial.headers()["pincher-report-completeness"], "partial");
    let partial: Value = partial.json().await.expect("JSON");
    assert_eq!(partial["errors"][0]["region"], "xx-fake-1");

    for bad in [
        "bogus=1",
        "all_regions=maybe",
        "tag=novalue",
        "service=nope",
        "format=pdf",
    ] {
        let response = server.get(&format!("/reports/aws/ec2?{bad}"), None).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_named_profile_and_a_templates_dir_are_honoured() {
    let f = fixture().await;
    let dir = f.pincher.database.dir.path();
    let m = &f.pincher.org.management;
    std::fs::write(
        dir.join("aws-config"),
        "[profile demo]\nregion = eu-west-1\n",
    )
    .expect("write config");
    std::fs::write(
        dir.join("aws-credentials"),
        format!(
            "[demo]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            m.access_key_id, m.secret_access_key, m.session_token
        ),
    )
    .expect("write credentials");
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(
        templates.join("report.md.j2"),
        "custom {{ title }}: {{ rows | length }} row(s)\n",
    )
    .expect("write template");
    std::fs::write(
        dir.join("pincher.toml"),
        format!("templates_dir = {:?}\n", templates.display().to_string()),
    )
    .expect("write settings");

    let output = f
        .pincher
        .command()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env("AWS_CONFIG_FILE", dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws-credentials"))
        .args([
            "--config",
            "pincher.toml",
            "aws",
            "--profile",
            "demo",
            "ec2",
            "report",
        ])
        .args(["--output", "markdown"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "custom EC2 instances: 1 row(s)\n",
        "the profile's credentials and region (eu-west-1: batch only) and the custom template"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_naming_the_call() {
    let pincher = Pincher::new(0).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let output = pincher
        .command()
        .env("PINCHER_AWS__ENDPOINT_URL", &closed)
        .args(["aws", "ec2", "report", "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("sts:GetCallerIdentity") && err.contains("Connection refused"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "printed once: {err}");
    assert!(!err.contains("DispatchFailure"), "no debug dump: {err}");
    assert!(output.stdout.is_empty());
    assert!(
        !err.contains(&pincher.org.management.secret_access_key),
        "{err}"
    );
}

/// Names a spreadsheet would run as formulas, and escape sequences that would rewrite a
/// terminal, arrive from AWS as plain data and leave pincher as plain data.
#[tokio::test]
async fn hostile_tag_values_are_neutralised_in_csv_tables_and_html() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let m = &org.management;
    org.run_instances(
        m,
        "us-east-1",
        1,
        "t3.micro",
        &[("Name", "=HYPERLINK(\"http://evil\",\"x\")")],
    )
    .await;
    org.run_instances(
        m,
        "us-east-1",
        1,
        "t3.micro",
        &[("Name", "web\u{9b}2J\r\nfake row")],
    )
    .await;

    let report = |format: &str| {
        pincher.ok(&[
            "aws",
            "--regions",
            "us-east-1",
            "ec2",
            "report",
            "--output",
            format,
        ])
    };
    let csv = report("csv");
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    let cells: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .filter_map(Result::ok)
        .flat_map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        cells.iter().all(|c| !c.starts_with(['=', '+', '@'])),
        "{cells:?}"
    );

    let table = report("table");
    // A C1 CSI (an escape sequence on many terminals) and a carriage return: XML carries
    // them, and they would rewrite the screen or forge a row.
    assert!(
        !table.contains('\u{9b}') && !table.contains('\r'),
        "{table:?}"
    );
    assert!(
        table.contains("\\u{9b}") && table.contains("\\r\\n"),
        "{table}"
    );

    let server = pincher.serve();
    let response = server
        .get("/reports/aws/ec2?regions=us-east-1&format=html", None)
        .await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'sha256-")
            && !csp.contains("unsafe-eval")
            && !csp.contains("script-src 'unsafe"),
        "only the sorting script, by its hash: {csp}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let response = server
        .get("/reports/aws/ec2?regions=us-east-1&format=csv", None)
        .await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.text().await.expect("text").contains("'=HYPERLINK"));
}
