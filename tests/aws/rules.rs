//! Rules on moto: stopping the `env=dev` instances stops exactly those, and a dry run of the
//! same rule changes nothing; a cleanup rule releases the idle addresses the savings report
//! finds.

use serde_json::Value;

use crate::harness::Pincher;

const REGION: &str = "us-east-1";

#[tokio::test]
async fn a_rule_stops_exactly_the_dev_instances_and_its_dry_run_changes_nothing() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let dev = org
        .run_instances(m, REGION, 2, "t3.micro", &[("env", "dev")])
        .await;
    let prod = org
        .run_instances(m, REGION, 2, "t3.micro", &[("env", "prod")])
        .await;
    let file = pincher.database.dir.path().join("evening.yaml");
    std::fs::write(
        &file,
        "name: dev-evening\n\
         description: stop the dev instances in the evening\n\
         schedule: \"0 19 * * MON-FRI\"\n\
         timezone: Europe/Berlin\n\
         steps:\n  \
           - action: aws.ec2.stop\n    \
             params:\n      \
               tags: {env: dev}\n",
    )
    .expect("write the rule");
    pincher.ok(&["rules", "apply", file.to_str().expect("path")]);

    let dry: Value = serde_json::from_str(&pincher.ok(&[
        "rules",
        "run",
        "dev-evening",
        "--dry-run",
        "--output",
        "json",
    ]))
    .expect("JSON");
    assert_eq!(dry["outcome"], "ok", "{dry}");
    assert_eq!(dry["dry_run"], true);
    let mut all = dev.clone();
    all.extend(prod.iter().cloned());
    let states = org.instance_states(m, REGION, &all).await;
    assert!(states.values().all(|s| s == "running"), "{states:?}");
    let dry_step = dry["steps"][0]["run_id"].as_str().expect("the step's run");
    let shown: Value =
        serde_json::from_str(&pincher.ok(&["runs", "show", dry_step, "--output", "json"]))
            .expect("JSON");
    let planned: Vec<&str> = shown["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["result"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(planned, ["would_change", "would_change"], "{shown}");

    let run: Value =
        serde_json::from_str(&pincher.ok(&["rules", "run", "dev-evening", "--output", "json"]))
            .expect("JSON");
    assert_eq!(run["outcome"], "ok", "{run}");
    let states = org.instance_states(m, REGION, &all).await;
    for id in &dev {
        assert_eq!(states[id], "stopped", "{id}");
    }
    for id in &prod {
        assert_eq!(states[id], "running", "{id} must not be touched");
    }
    let next = pincher.ok(&["rules", "next", "dev-evening", "--count", "2"]);
    assert!(
        next.contains("19:00:00 CE"),
        "fire times in Berlin time: {next}"
    );
}

#[tokio::test]
async fn a_weekly_cleanup_rule_reports_the_waste_then_releases_the_idle_addresses() {
    let pincher = Pincher::new(0).await;
    let (org, m) = (&pincher.org, &pincher.org.management);
    let ec2 = aws_sdk_ec2::Client::new(&org.config(m, REGION));
    let idle = ec2
        .allocate_address()
        .send()
        .await
        .expect("AllocateAddress")
        .allocation_id
        .expect("allocation id");
    let file = pincher.database.dir.path().join("cleanup.yaml");
    std::fs::write(
        &file,
        "name: weekly-cleanup\n\
         schedule: \"0 6 * * MON\"\n\
         steps:\n  \
           - action: aws.savings.report\n  \
           - action: aws.ec2.release-address\n    \
             params: {findings: true, min_age_days: 0}\n",
    )
    .expect("write the rule");
    pincher.ok(&["rules", "apply", file.to_str().expect("path")]);

    let run: Value =
        serde_json::from_str(&pincher.ok(&["rules", "run", "weekly-cleanup", "--output", "json"]))
            .expect("JSON");
    assert_eq!(run["outcome"], "ok", "{run}");
    let released = run["steps"][1]["run_id"].as_str().expect("the step's run");
    let shown: Value =
        serde_json::from_str(&pincher.ok(&["runs", "show", released, "--output", "json"]))
            .expect("JSON");
    assert_eq!(shown["results"][0]["target"], idle.as_str(), "{shown}");
    assert_eq!(shown["results"][0]["result"], "changed", "{shown}");
    let left = ec2
        .describe_addresses()
        .send()
        .await
        .expect("DescribeAddresses")
        .addresses
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
