//! The savings fixes on moto: `pincher aws ec2 release-address` and `pincher aws ebs
//! delete-volume` (and their actions over HTTP), by ids and by findings, with a dry run
//! first, then for real; the protect tag, max_targets, attached resources left alone, and a
//! snapshot of each volume kept unless refused.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VolumeType};
use serde_json::{Value, json};

use crate::harness::{Pincher, json_with_code, pairs, results, stderr};

const REGION: &str = "us-east-1";

fn target<'a>(out: &'a Value, id: &str) -> &'a Value {
    out["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["target"] == id)
        .unwrap_or_else(|| panic!("{id} not in {out}"))
}

async fn allocate(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)]) -> String {
    let mut spec = TagSpecification::builder().resource_type(ResourceType::ElasticIp);
    for (key, value) in tags {
        spec = spec.tags(Tag::builder().key(*key).value(*value).build());
    }
    ec2.allocate_address()
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id
        .expect("allocation id")
}

async fn addresses(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let mut ids: Vec<String> = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses")
        .addresses
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.allocation_id)
        .collect();
    ids.sort();
    ids
}

async fn volume_exists(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    ec2.describe_volumes()
        .send()
        .await
        .expect("DescribeVolumes")
        .volumes
        .unwrap_or_default()
        .iter()
        .any(|v| v.volume_id.as_deref() == Some(id))
}

/// The snapshots tagged as taken before deleting `volume`.
async fn kept_snapshots(ec2: &aws_sdk_ec2::Client, volume: &str) -> Vec<(String, String)> {
    ec2.describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:pincher:deleted-volume")
                .values(volume)
                .build(),
        )
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((s.snapshot_id?, s.volume_id?)))
        .collect()
}

#[tokio::test]
async fn idle_addresses_are_released_after_a_dry_run_and_nothing_else_is() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, REGION));
    let idle = allocate(&ec2, &[("team", "pay")]).await;
    let protected = allocate(&ec2, &[("pincher:protect", "true")]).await;
    let used = allocate(&ec2, &[]).await;
    let instance = org.run_instances(m, REGION, 1, "t3.micro", &[]).await;
    ec2.associate_address()
        .allocation_id(&used)
        .instance_id(&instance[0])
        .send()
        .await
        .expect("AssociateAddress");

    // Without a selection, or with min_age_days but no findings, nothing runs.
    let empty = pincher.run(&["aws", "ec2", "release-address", "--yes"]);
    assert_eq!(empty.status.code(), Some(2), "{}", stderr(&empty));
    let stray = pincher.run(&["aws", "ec2", "release-address", "--min-age-days", "3"]);
    assert_eq!(stray.status.code(), Some(2), "{}", stderr(&stray));

    // The dry run lists the findings: the idle address would go, the protected one stays.
    let args = ["aws", "ec2", "release-address", "--findings", "--dry-run"];
    let planned = json_with_code(&pincher, &args, 0);
    assert_eq!(planned["dry_run"], true);
    assert_eq!(
        results(&planned),
        pairs(&[(&idle, "would_change"), (&protected, "skipped")]),
        "the associated address is no finding"
    );
    let all = {
        let mut all = vec![idle.clone(), protected.clone(), used.clone()];
        all.sort();
        all
    };
    assert_eq!(addresses(&ec2).await, all, "a dry run changes nothing");

    // An associated address named by id is refused, not released.
    let by_id = json_with_code(
        &pincher,
        &["aws", "ec2", "release-address", "--ids", &used, "--yes"],
        1,
    );
    let reason = target(&by_id, &used)["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&instance[0]), "{by_id}");

    // Elastic IPs have no age in AWS: a minimum age selects none of them.
    let aged = [
        "aws",
        "ec2",
        "release-address",
        "--findings",
        "--min-age-days",
        "1",
        "--yes",
    ];
    assert_eq!(results(&json_with_code(&pincher, &aged, 0)), []);

    // max_targets bounds the run before anything changes.
    let extra = allocate(&ec2, &[]).await;
    let bounded = pincher.run(&[
        "aws",
        "ec2",
        "release-address",
        "--findings",
        "--max-targets",
        "1",
        "--yes",
    ]);
    assert_ne!(bounded.status.code(), Some(0));
    assert!(
        stderr(&bounded).contains("max_targets"),
        "{}",
        stderr(&bounded)
    );
    assert_eq!(addresses(&ec2).await.len(), 4);

    // For real: the idle findings narrowed by tag.
    let done = json_with_code(
        &pincher,
        &[
            "aws",
            "ec2",
            "release-address",
            "--findings",
            "--tag",
            "team=pay",
            "--yes",
        ],
        0,
    );
    assert_eq!(results(&done), pairs(&[(&idle, "changed")]));
    assert_eq!(target(&done, &idle)["state_after"], "released");
    let mut left = vec![protected.clone(), used.clone(), extra.clone()];
    left.sort();
    assert_eq!(addresses(&ec2).await, left);
    assert!(done["run"].is_string(), "the run is recorded: {done}");
}

#[tokio::test]
async fn unattached_volumes_are_deleted_after_a_snapshot_and_attached_ones_never() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, REGION));
    let idle = org
        .create_volume(m, REGION, 100, VolumeType::Gp2, &[("team", "pay")])
        .await;
    let protected = org
        .create_volume(
            m,
            REGION,
            10,
            VolumeType::Gp3,
            &[("pincher:protect", "true")],
        )
        .await;
    let scratch = org.create_volume(m, REGION, 5, VolumeType::Gp3, &[]).await;
    let attached = org.create_volume(m, REGION, 20, VolumeType::Gp3, &[]).await;
    let instance = org.run_instances(m, REGION, 1, "t3.micro", &[]).await;
    ec2.attach_volume()
        .volume_id(&attached)
        .instance_id(&instance[0])
        .device("/dev/sdf")
        .send()
        .await
        .expect("AttachVolume");

    // The dry run asks AWS for both calls and changes nothing.
    let planned = json_with_code(
        &pincher,
        &["aws", "ebs", "delete-volume", "--findings", "--dry-run"],
        0,
    );
    assert_eq!(
        results(&planned),
        pairs(&[
            (&idle, "would_change"),
            (&protected, "skipped"),
            (&scratch, "would_change"),
        ]),
        "the attached volume is no finding"
    );
    assert!(volume_exists(&ec2, &idle).await);
    assert_eq!(kept_snapshots(&ec2, &idle).await, []);

    // An attached volume named by id is refused.
    let by_id = json_with_code(
        &pincher,
        &["aws", "ebs", "delete-volume", "--ids", &attached, "--yes"],
        1,
    );
    assert_eq!(results(&by_id), pairs(&[(&attached, "failed")]));
    assert!(volume_exists(&ec2, &attached).await);

    // The volumes are minutes old: a minimum age of a day selects none.
    let aged = [
        "aws",
        "ebs",
        "delete-volume",
        "--findings",
        "--min-age-days",
        "1",
        "--yes",
    ];
    assert_eq!(results(&json_with_code(&pincher, &aged, 0)), []);

    // For real, narrowed by tag: a snapshot first, then the volume is gone.
    let done = json_with_code(
        &pincher,
        &[
            "aws",
            "ebs",
            "delete-volume",
            "--findings",
            "--min-age-days",
            "0",
            "--tag",
            "team=pay",
            "--yes",
        ],
        0,
    );
    assert_eq!(results(&done), pairs(&[(&idle, "changed")]));
    assert!(!volume_exists(&ec2, &idle).await);
    let kept = kept_snapshots(&ec2, &idle).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, idle, "the snapshot is of the deleted volume");
    let reason = target(&done, &idle)["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&kept[0].0), "the result names it: {done}");

    // Over HTTP, as a rule's step would run it: without a snapshot when asked.
    let server = pincher.serve_as("write");
    let refused = server
        .client
        .post(format!(
            "{}/actions/aws.ebs.delete-volume/runs",
            server.base
        ))
        .json(&json!({"ids": [scratch], "min_age_days": 1}))
        .send()
        .await
        .expect("run");
    assert_eq!(refused.status().as_u16(), 422);
    let problem: Value = refused.json().await.expect("problem");
    assert!(problem.to_string().contains("min_age_days"), "{problem}");
    let run = server
        .client
        .post(format!(
            "{}/actions/aws.ebs.delete-volume/runs",
            server.base
        ))
        .json(&json!({"ids": [scratch], "snapshot": false}))
        .send()
        .await
        .expect("run");
    assert_eq!(run.status().as_u16(), 201);
    let run: Value = run.json().await.expect("run");
    assert_eq!(run["outcome"], "ok", "{run}");
    assert!(!volume_exists(&ec2, &scratch).await);
    assert_eq!(kept_snapshots(&ec2, &scratch).await, []);
    assert!(volume_exists(&ec2, &protected).await);
    assert!(volume_exists(&ec2, &attached).await);
}
