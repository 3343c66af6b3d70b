//! The RDS, Lambda and Organizations reports on moto, from the CLI and over HTTP.

use serde_json::{Value, json};

use crate::harness::Pincher;
use crate::support::moto::{check_well_formed_html, lambda_zip, tag_map};

const REGIONS: &str = "us-east-1,eu-west-1";

fn column(report: &Value, field: &str) -> Vec<Value> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[field].clone())
        .collect()
}

#[tokio::test]
async fn rds_instances_of_every_account_and_region() {
    let pincher = Pincher::new(1).await;
    let org = &pincher.org;
    let (m, a) = (&org.management, &org.members[0]);
    org.create_db_instance(
        m,
        "us-east-1",
        "orders-db",
        "postgres",
        "db.t3.micro",
        20,
        true,
        &[("service", "billing")],
    )
    .await;
    org.create_db_instance(
        a,
        "eu-west-1",
        "search-db",
        "mysql",
        "db.m5.large",
        100,
        false,
        &[("service", "search")],
    )
    .await;
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

    let report = pincher.json(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "rds",
        "report",
    ]);
    assert_eq!(report["kind"], "aws.rds");
    assert_eq!(report["errors"], json!([]));
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{report}");
    let orders = rows
        .iter()
        .find(|r| r["identifier"] == "orders-db")
        .expect("orders-db");
    assert_eq!(orders["account"], json!(m.account));
    assert_eq!(orders["region"], "us-east-1");
    assert_eq!(orders["engine"], "postgres");
    assert!(
        orders["engine_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{orders}"
    );
    assert_eq!(orders["class"], "db.t3.micro");
    assert_eq!(orders["status"], "available");
    assert_eq!(orders["multi_az"], true);
    assert_eq!(orders["storage_type"], "gp3");
    assert_eq!(orders["storage_gib"], 20);
    assert!(orders["created"].is_string());
    assert_eq!(orders["service"], Value::Null);
    assert_eq!(orders["tags"], json!(tag_map(&[("service", "billing")])));
    let search = rows
        .iter()
        .find(|r| r["identifier"] == "search-db")
        .expect("search-db");
    assert_eq!(search["account"], json!(a.account));
    assert_eq!(search["region"], "eu-west-1");
    assert_eq!(search["service"], "search");
    assert_eq!(search["multi_az"], false);
    assert_eq!(
        report["summary"],
        json!({
            "total": 2,
            "by_engine": {"mysql": 1, "postgres": 1},
            "by_class": {"db.m5.large": 1, "db.t3.micro": 1},
            "by_region": {"eu-west-1": 1, "us-east-1": 1},
            "multi_az": 1,
            "storage_gib": 120,
        })
    );

    let by = |extra: &[&str]| {
        let mut args = vec![
            "aws",
            "--all-accounts",
            "--regions",
            REGIONS,
            "rds",
            "report",
        ];
        args.extend(extra);
        column(&pincher.json(&args), "identifier")
    };
    assert_eq!(by(&["--engine", "postgres"]), [json!("orders-db")]);
    assert_eq!(by(&["--tag", "service=billing"]), [json!("orders-db")]);
    assert_eq!(by(&["--service", "search"]), [json!("search-db")]);

    let csv_text = pincher.ok(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "rds",
        "report",
        "--output",
        "csv",
    ]);
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.expect("record"))
        .collect();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .any(|r| &r[2] == "orders-db" && &r[9] == "20"),
        "{csv_text}"
    );

    let server = pincher.serve();
    let http: Value = server
        .get(
            &format!("/reports/aws/rds?all_accounts=true&regions={REGIONS}&engine=mysql"),
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(column(&http, "identifier"), [json!("search-db")]);
    let html = server
        .get(
            &format!("/reports/aws/rds?all_accounts=true&regions={REGIONS}"),
            Some("text/html"),
        )
        .await
        .text()
        .await
        .expect("text");
    check_well_formed_html(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("orders-db") && html.contains("search-db"));
}

#[tokio::test]
async fn lambda_functions_with_deprecated_runtimes_flagged() {
    let pincher = Pincher::new(1).await;
    let org = &pincher.org;
    let (m, a) = (&org.management, &org.members[0]);
    let zip = lambda_zip();
    let role_m = org.create_role(m, "lambda-exec").await;
    let role_a = org.create_role(a, "lambda-exec").await;
    org.create_function(m, "us-east-1", &role_m, "old", "python3.8", 128, 3, &zip)
        .await;
    org.create_function(m, "us-east-1", &role_m, "new", "python3.12", 256, 30, &zip)
        .await;
    org.create_function(
        a,
        "eu-west-1",
        &role_a,
        "legacy",
        "nodejs16.x",
        512,
        10,
        &zip,
    )
    .await;
    // Tags are set after creation, as a team tagging its functions would.
    org.tag_function(
        m,
        "us-east-1",
        "old",
        &[("service", "billing"), ("team", "pay")],
    )
    .await;
    pincher.register("billing", "pay", &["service=billing"]);

    let report = pincher.json(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "lambda",
        "report",
    ]);
    assert_eq!(report["kind"], "aws.lambda");
    assert_eq!(report["errors"], json!([]));
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{report}");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .expect("row")
            .clone()
    };
    let old = row("old");
    assert_eq!(old["account"], json!(m.account));
    assert_eq!(old["runtime"], "python3.8");
    assert_eq!(old["deprecated"], true);
    assert_eq!(old["deprecation_date"], "2024-10-14");
    assert_eq!(old["memory_mb"], 128);
    assert_eq!(old["timeout_secs"], 3);
    assert_eq!(old["code_size_bytes"], zip.len());
    assert_eq!(old["architecture"], "x86_64");
    assert!(
        old["last_modified"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{old}"
    );
    assert_eq!(old["tags"], json!({"service": "billing", "team": "pay"}));
    assert_eq!(old["service"], "billing");
    let new = row("new");
    assert_eq!(new["tags"], json!({}));
    assert_eq!(new["service"], Value::Null);
    assert_eq!(new["deprecated"], false);
    assert_eq!(new["deprecation_date"], Value::Null);
    let legacy = row("legacy");
    assert_eq!(legacy["account"], json!(a.account));
    assert_eq!(legacy["region"], "eu-west-1");
    assert_eq!(legacy["deprecated"], true);
    assert_eq!(
        report["summary"],
        json!({
            "total": 3,
            "deprecated": 2,
            "by_runtime": {"nodejs16.x": 1, "python3.12": 1, "python3.8": 1},
            "by_region": {"eu-west-1": 1, "us-east-1": 2},
            "code_storage_bytes": 3 * zip.len(),
        })
    );

    let deprecated = pincher.json(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "lambda",
        "report",
        "--deprecated",
    ]);
    let mut names: Vec<String> = column(&deprecated, "name")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names, ["legacy", "old"]);
    let table = pincher.ok(&[
        "aws",
        "--all-accounts",
        "--regions",
        REGIONS,
        "lambda",
        "report",
        "--output",
        "table",
    ]);
    assert!(table.contains("yes, since 2024-10-14"), "{table}");
    for filter in [["--tag", "team=pay"], ["--service", "billing"]] {
        let mut args = vec![
            "aws",
            "--all-accounts",
            "--regions",
            REGIONS,
            "lambda",
            "report",
        ];
        args.extend(filter);
        assert_eq!(
            column(&pincher.json(&args), "name"),
            [json!("old")],
            "{filter:?}"
        );
    }

    let server = pincher.serve();
    let http: Value = server
        .get(
            &format!("/reports/aws/lambda?all_accounts=true&regions={REGIONS}&runtime=python3.12"),
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(column(&http, "name"), [json!("new")]);
    let http: Value = server
        .get("/reports/aws/lambda?deprecated=true", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        column(&http, "name"),
        [json!("old")],
        "the current account, home region"
    );
    let http: Value = server
        .get(
            "/reports/aws/lambda?tag=service=billing&service=billing",
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(column(&http, "name"), [json!("old")]);
    let unknown = server.get("/reports/aws/lambda?service=nobody", None).await;
    assert_eq!(
        unknown.status().as_u16(),
        400,
        "an unregistered service is named"
    );
}

#[tokio::test]
async fn organization_accounts_with_their_unit_path() {
    let pincher = Pincher::new(2).await;
    let org = &pincher.org;
    let root = org.root_id().await;
    let engineering = org.create_unit(&root, "Engineering").await;
    let prod = org.create_unit(&engineering, "Prod").await;
    org.move_account(&org.members[0].account, &root, &prod)
        .await;

    let report = pincher.json(&["aws", "organizations", "report"]);
    assert_eq!(report["kind"], "aws.organizations");
    assert_eq!(report["errors"], json!([]));
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{report}");
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).expect("row").clone();
    let member = row(&org.members[0].account);
    assert_eq!(member["name"], "member-0");
    assert!(
        member["email"]
            .as_str()
            .is_some_and(|e| e.starts_with("member0@")),
        "{member}"
    );
    assert_eq!(member["status"], "ACTIVE");
    assert!(member["joined"].is_string());
    assert_eq!(member["ou_path"], "Root/Engineering/Prod");
    assert_eq!(row(&org.members[1].account)["ou_path"], "Root");
    assert_eq!(row(&org.management.account)["ou_path"], "Root");
    assert_eq!(
        report["summary"],
        json!({
            "total": 3,
            "by_status": {"ACTIVE": 3},
            "by_ou": {"Root": 2, "Root/Engineering/Prod": 1},
        })
    );

    let server = pincher.serve();
    let markdown = server
        .get("/reports/aws/organizations", Some("text/markdown"))
        .await
        .text()
        .await
        .expect("text");
    assert!(markdown.contains("| Root/Engineering/Prod |"), "{markdown}");
    let response = server.get("/reports/aws/organizations?state=x", None).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn status_checks_aws_with_sts_and_warns_when_it_fails() {
    let pincher = Pincher::new(0).await;
    let health = pincher.json(&["status"]);
    assert_eq!(health["status"], "pass", "{health}");
    assert_eq!(
        health["checks"]["aws:responseTime"][0]["status"], "pass",
        "{health}"
    );

    let output = pincher
        .command()
        .env("PINCHER_AWS__ENDPOINT_URL", "http://127.0.0.1:1")
        .env("PINCHER_STATUS__CHECK_TIMEOUT_MS", "3000")
        .args(["status", "--output", "json"])
        .output()
        .expect("run pincher");
    assert_eq!(
        output.status.code(),
        Some(0),
        "an optional dependency only warns"
    );
    let health: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(health["status"], "warn", "{health}");
    assert_eq!(health["checks"]["aws:responseTime"][0]["status"], "warn");
    let text = String::from_utf8_lossy(&output.stdout);
    for (key, value) in pincher.org.env() {
        if key == "AWS_SECRET_ACCESS_KEY" || key == "AWS_SESSION_TOKEN" {
            assert!(!text.contains(&value), "{key} leaked into /status");
        }
    }
}
