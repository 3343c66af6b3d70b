//! `pincher rules apply|list|show|next|delete` on both backends: declarative, idempotent,
//! the changes shown first, bad files refused naming the file, step and field.

use serde_json::json;

use crate::both_backends;
use crate::cli::{CliEnv, stderr};

const OFFICE_HOURS: &str = "\
- name: dev-off
  description: dev instances off on weekday evenings
  schedule: \"0 19 * * MON-FRI\"
  timezone: Europe/Berlin
  steps:
    - action: aws.ec2.stop
      params: {tags: {env: dev}}
- name: dev-on
  schedule: \"0 7 * * MON-FRI\"
  timezone: Europe/Berlin
  steps:
    - action: aws.ec2.start
      params: {tags: {env: dev}}
";

both_backends! {
    async fn apply_is_declarative_and_idempotent(backend) {
        let env = CliEnv::new(backend).await;
        let dir = env.database.dir.path().join("rules");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("office-hours.yaml"), OFFICE_HOURS).expect("write");
        let backup = json!({"name": "hourly-backup", "schedule": "@hourly",
                            "steps": [{"action": "opsmanager.backup", "params": {"all_groups": true}}]});
        std::fs::write(dir.join("backup.json"), backup.to_string()).expect("write");
        let dir_arg = dir.to_str().expect("path");

        let planned = env.ok(&["rules", "apply", dir_arg, "--dry-run"]);
        assert!(planned.contains("+ create dev-off") && planned.contains("3 to create"), "{planned}");
        assert_eq!(env.json(&["rules", "list"]), json!([]), "a dry run changes nothing");

        let applied = env.ok(&["rules", "apply", dir_arg]);
        assert!(applied.contains("3 to create, 0 to update, 0 to delete, 0 unchanged"), "{applied}");
        let listed = env.json(&["rules", "list"]);
        let names: Vec<&str> = listed.as_array().expect("array").iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["dev-off", "dev-on", "hourly-backup"]);
        let before = env.json(&["rules", "show", "dev-off"]);

        let again = env.ok(&["rules", "apply", dir_arg]);
        assert!(again.contains("0 to create, 0 to update, 0 to delete, 3 unchanged"), "{again}");
        let after = env.json(&["rules", "show", "dev-off"]);
        assert_eq!(after, before, "a second apply writes nothing (same revision, same updated_at)");

        std::fs::write(dir.join("office-hours.yaml"), OFFICE_HOURS.replace("0 19 *", "30 18 *")).expect("write");
        std::fs::remove_file(dir.join("backup.json")).expect("rm");
        let changed = env.ok(&["rules", "apply", dir_arg, "--prune"]);
        assert!(changed.contains("~ update dev-off"), "{changed}");
        assert!(changed.contains("schedule: \"0 19 * * MON-FRI\" → \"30 18 * * MON-FRI\""), "{changed}");
        assert!(changed.contains("- delete hourly-backup"), "{changed}");
        assert_eq!(env.json(&["rules", "show", "dev-off"])["schedule"], "30 18 * * MON-FRI");
        assert_eq!(env.run(&["rules", "show", "hourly-backup"]).status.code(), Some(1));

        let next = env.ok(&["rules", "next", "dev-on", "--count", "3"]);
        assert_eq!(next.lines().filter(|l| l.contains("07:00:00")).count(), 3, "{next}");
        env.ok(&["rules", "delete", "dev-on"]);
        assert_eq!(env.json(&["rules", "list"]).as_array().map(Vec::len), Some(1));
    }

    async fn the_example_rules_apply(backend) {
        let env = CliEnv::new(backend).await;
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/rules");
        let applied = env.ok(&["rules", "apply", examples]);
        assert!(applied.contains("3 to create"), "{applied}");
        let next = env.ok(&["rules", "next", "dev-evening-stop", "--count", "1"]);
        assert!(next.contains("19:00:00"), "{next}");
    }

    async fn a_bad_file_is_refused_whole_naming_the_file_step_and_field(backend) {
        let env = CliEnv::new(backend).await;
        let file = env.database.dir.path().join("bad.yaml");
        std::fs::write(&file, OFFICE_HOURS.replace("{tags: {env: dev}}", "{tags: env=dev}")).expect("write");
        let output = env.run(&["rules", "apply", file.to_str().expect("path")]);
        assert_eq!(output.status.code(), Some(2));
        let err = stderr(&output);
        assert!(err.contains("bad.yaml[0]: steps[0].params.tags"), "{err}");
        assert!(err.contains("bad.yaml[1]: steps[0].params.tags"), "{err}");
        assert_eq!(env.json(&["rules", "list"]), json!([]), "nothing was applied");
    }
}
