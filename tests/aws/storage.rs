//! The EBS storage inventory on moto: volumes (attached and not) and snapshots (of volumes
//! that exist, of volumes gone, behind a registered AMI), each priced from the price table,
//! from the CLI and over HTTP.

use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, Tag, VolumeType};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::harness::Pincher;
use crate::support::moto::{AccountCredentials, MotoOrg};

const SEED: (&str, &str) = ("seed", "ebs");

async fn volume(
    org: &MotoOrg,
    account: &AccountCredentials,
    region: &str,
    gib: i32,
    kind: VolumeType,
    extra: &[(&str, &str)],
) -> String {
    let tags: Vec<(&str, &str)> = std::iter::once(SEED).chain(extra.iter().copied()).collect();
    org.create_volume(account, region, gib, kind, &tags).await
}

async fn snapshot(
    org: &MotoOrg,
    account: &AccountCredentials,
    region: &str,
    volume: &str,
) -> String {
    org.create_snapshot(account, region, volume, &[SEED]).await
}

fn row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {report}"))
}

fn ids(report: &Value) -> Vec<String> {
    let mut ids: Vec<String> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn volumes_and_snapshots_of_every_account_and_region_each_priced_from_the_table() {
    let pincher = Pincher::new(1).await;
    let org = &pincher.org;
    let (m, a) = (&org.management, &org.members[0]);

    let idle = volume(
        org,
        m,
        "us-east-1",
        100,
        VolumeType::Gp2,
        &[("service", "billing")],
    )
    .await;
    let used = volume(org, m, "us-east-1", 50, VolumeType::Gp3, &[]).await;
    let instance = org
        .run_instances(m, "us-east-1", 1, "t3.micro", &[])
        .await
        .remove(0);
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, "us-east-1"));
    ec2.attach_volume()
        .volume_id(&used)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await
        .expect("AttachVolume");
    let of_used = snapshot(org, m, "us-east-1", &used).await;
    let gone = volume(org, m, "us-east-1", 20, VolumeType::Gp2, &[]).await;
    let orphan = snapshot(org, m, "us-east-1", &gone).await;
    org.delete_volume(m, "us-east-1", &gone).await;
    // moto's RegisterImage makes a snapshot of its own for the image's root device: that
    // snapshot is the one behind the image.
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
    let image = ec2
        .describe_images()
        .image_ids(&ami)
        .send()
        .await
        .expect("DescribeImages");
    let behind_ami = image
        .images()
        .first()
        .and_then(|i| i.block_device_mappings().first())
        .and_then(|b| b.ebs())
        .and_then(|e| e.snapshot_id())
        .expect("the image's snapshot")
        .to_owned();
    ec2.create_tags()
        .resources(&behind_ami)
        .tags(Tag::builder().key(SEED.0).value(SEED.1).build())
        .send()
        .await
        .expect("CreateTags");
    let far = volume(org, a, "eu-west-1", 10, VolumeType::Gp3, &[]).await;
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

    let args = [
        "aws",
        "--all-accounts",
        "--regions",
        "us-east-1,eu-west-1",
        "ebs",
        "report",
        "--tag",
        "seed=ebs",
    ];
    let report = pincher.json(&args);
    assert_eq!(report["kind"], "aws.ebs");
    assert_eq!(report["errors"], json!([]));
    let mut expected = vec![
        idle.clone(),
        used.clone(),
        of_used.clone(),
        orphan.clone(),
        behind_ami.clone(),
        far.clone(),
    ];
    expected.sort();
    assert_eq!(
        ids(&report),
        expected,
        "exactly the seeded volumes and snapshots"
    );

    let idle_row = row(&report, &idle);
    assert_eq!(idle_row["kind"], "volume");
    assert_eq!(idle_row["account"], json!(m.account));
    assert_eq!(idle_row["state"], "available");
    assert_eq!(idle_row["attached_to"], json!([]));
    assert_eq!(idle_row["volume_type"], "gp2");
    assert_eq!(idle_row["size_gib"], 100);
    assert_eq!(idle_row["service"], "billing");
    // The table's us-east-1 gp2 price, 0.10 per GB-month, × 100 GiB.
    assert_eq!(idle_row["monthly_estimate"], "10.00");
    assert_eq!(idle_row["unpriced"], Value::Null);
    let used_row = row(&report, &used);
    assert_eq!(used_row["state"], "in-use");
    assert_eq!(used_row["attached_to"], json!([instance]));
    assert_eq!(used_row["monthly_estimate"], "4.00");
    let far_row = row(&report, &far);
    assert_eq!(far_row["account"], json!(a.account));
    assert_eq!(far_row["region"], "eu-west-1");
    // eu-west-1 gp3 is 0.088 per GB-month.
    assert_eq!(far_row["monthly_estimate"], "0.88");

    let of_used_row = row(&report, &of_used);
    assert_eq!(of_used_row["kind"], "snapshot");
    assert_eq!(of_used_row["source_volume"], json!(used));
    assert_eq!(of_used_row["source_exists"], true);
    assert_eq!(of_used_row["amis"], json!([]));
    // Snapshots at 0.05 per GB-month of their volume's size.
    assert_eq!(of_used_row["monthly_estimate"], "2.50");
    let orphan_row = row(&report, &orphan);
    assert_eq!(orphan_row["source_volume"], json!(gone));
    assert_eq!(orphan_row["source_exists"], false);
    assert_eq!(orphan_row["monthly_estimate"], "1.00");
    let ami_row = row(&report, &behind_ami);
    assert_eq!(ami_row["amis"], json!([ami]));
    let ami_gib = ami_row["size_gib"].as_i64().expect("size");
    assert!(ami_gib > 0);
    let ami_cost = Decimal::new(5, 2) * Decimal::from(ami_gib);
    assert_eq!(ami_row["monthly_estimate"], json!(format!("{ami_cost:.2}")));
    assert_eq!(
        orphan_row["amis"],
        json!([]),
        "only the image's own snapshot is behind it"
    );

    let summary = &report["summary"];
    assert_eq!(summary["volumes"], 3);
    assert_eq!(summary["snapshots"], 3);
    assert_eq!(summary["volume_gib"], 160);
    let gone_sources = 1 + usize::from(ami_row["source_exists"] == false);
    assert_eq!(summary["snapshots_without_volume"], gone_sources);
    assert_eq!(
        summary["volumes_by_state"],
        json!({"available": 2, "in-use": 1})
    );
    let snapshots_cost = Decimal::new(350, 2) + ami_cost;
    let total = snapshots_cost + Decimal::new(1488, 2);
    assert_eq!(summary["estimated_monthly"], json!(format!("{total:.2}")));
    assert_eq!(
        summary["estimated_monthly_by_kind"],
        json!({"snapshot": format!("{snapshots_cost:.2}"), "volume": "14.88"})
    );
    assert_eq!(summary["unpriced"], json!([]));
    assert_eq!(summary["prices"]["table"], "embedded");
    assert_eq!(summary["prices"]["currency"], "USD");

    // --kind, and --tag with alternatives of one key.
    let mut snapshots_only = args.to_vec();
    snapshots_only.extend(["--kind", "snapshots"]);
    let snapshots = pincher.json(&snapshots_only);
    let mut want = vec![of_used.clone(), orphan.clone(), behind_ami.clone()];
    want.sort();
    assert_eq!(ids(&snapshots), want);
    let billing = pincher.json(&[
        "aws",
        "ebs",
        "report",
        "--tag",
        "service=billing",
        "--tag",
        "service=search",
    ]);
    assert_eq!(ids(&billing), vec![idle.clone()]);
    let service = pincher.json(&["aws", "ebs", "report", "--service", "billing"]);
    assert_eq!(ids(&service), vec![idle.clone()]);

    // Over HTTP, the same report.
    let server = pincher.serve();
    let response = server.get("/reports/aws/ebs?kind=volumes&tag=seed=ebs&all_accounts=true&regions=us-east-1,eu-west-1", None).await;
    assert_eq!(response.status().as_u16(), 200);
    let over_http: Value = response.json().await.expect("json");
    let mut volumes = vec![idle.clone(), used.clone(), far.clone()];
    volumes.sort();
    assert_eq!(ids(&over_http), volumes);
    assert_eq!(row(&over_http, &idle)["monthly_estimate"], "10.00");
}

#[tokio::test]
async fn a_price_table_of_ones_own_is_used_and_what_it_lacks_is_named_never_zero() {
    let pincher = Pincher::new(0).await;
    let org = &pincher.org;
    let m = &org.management;
    let priced = volume(org, m, "us-east-1", 40, VolumeType::Gp2, &[]).await;
    let unpriced = volume(org, m, "us-east-1", 40, VolumeType::Standard, &[]).await;
    let table = pincher.database.dir.path().join("our-prices.toml");
    std::fs::write(
        &table,
        "source = \"our negotiated rates\"\nas_of = \"2026-11-15\"\ncurrency = \"USD\"\nhours_per_month = 730\n\
         [regions.us-east-1]\nsnapshot_gb_month = \"0.04\"\n[regions.us-east-1.ebs_gb_month]\ngp2 = \"0.09\"\n",
    )
    .expect("write the table");
    let output = pincher
        .command()
        .env("PINCHER_AWS__PRICES_FILE", &table)
        .args([
            "aws", "ebs", "report", "--tag", "seed=ebs", "--output", "json",
        ])
        .output()
        .expect("run");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(row(&report, &priced)["monthly_estimate"], "3.60");
    let lacking = row(&report, &unpriced);
    assert_eq!(lacking["monthly_estimate"], Value::Null);
    assert_eq!(lacking["unpriced"], "standard volumes in us-east-1");
    assert_eq!(report["summary"]["estimated_monthly"], "3.60");
    assert_eq!(
        report["summary"]["unpriced"],
        json!(["standard volumes in us-east-1"])
    );
    assert_eq!(
        report["summary"]["prices"]["source"],
        "our negotiated rates"
    );

    let table_output = pincher
        .command()
        .env("PINCHER_AWS__PRICES_FILE", &table)
        .args([
            "aws", "ebs", "report", "--tag", "seed=ebs", "--output", "table",
        ])
        .output()
        .expect("run");
    let table_text = String::from_utf8_lossy(&table_output.stdout);
    assert!(
        table_text.contains("unpriced: standard volumes in us-east-1"),
        "{table_text}"
    );

    let missing = pincher
        .command()
        .env("PINCHER_AWS__PRICES_FILE", "/nonexistent/prices.toml")
        .args(["aws", "ebs", "report"])
        .output()
        .expect("run");
    assert_eq!(
        missing.status.code(),
        Some(1),
        "bad settings exit 1, as every other"
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("aws.prices_file"));
}
