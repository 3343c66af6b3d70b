//! A hostile Ops Manager: group ids that are paths, a negative version, a 50 MB body and
//! `next` links that never end. Nothing lands outside the backup folder, the honest group is
//! still saved, each bad one is named, and the run ends in bounded time and memory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Env, stderr};
use crate::support::database::Backend;
use crate::support::opsmanager::Hostile;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_ops_manager_cannot_escape_the_folder_or_stop_the_honest_groups() {
    let env = Env::new(Backend::Sqlite, 3).await;
    let ids = env.fake.group_ids();
    let mut hostile = Hostile {
        bad_group_ids: vec!["../../etc".into(), "..".into(), "a/b".into()],
        endless_next_links: true,
        ..Hostile::default()
    };
    hostile.versions.insert(ids[1].clone(), -7);
    hostile.huge_bodies.insert(ids[2].clone(), 50 * 1024 * 1024);
    env.fake.turn_hostile(hostile);

    // getrusage(RUSAGE_CHILDREN) gives the peak memory of the pincher process.
    let script = "import resource, subprocess, sys\n\
                  p = subprocess.run(sys.argv[1:], capture_output=True)\n\
                  sys.stdout.buffer.write(p.stdout)\n\
                  sys.stderr.buffer.write(p.stderr)\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
                  sys.exit(p.returncode)";
    let started = Instant::now();
    let output = env
        .command("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_pincher")])
        .args(["opsmanager", "backup", "--all-groups", "--output", "json"])
        .output()
        .await
        .expect("run pincher under python3");
    let took = started.elapsed();
    let errors = stderr(&output);
    let peak_kib: u64 = errors
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .expect("the peak RSS line");

    assert_eq!(output.status.code(), Some(3), "a partial run: {errors}");
    let outcome: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(outcome["completeness"], "partial", "{outcome}");
    let named: Vec<&str> = outcome["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["group"].as_str())
        .collect();
    assert_eq!(named, vec!["../../etc", "..", "a/b"], "{outcome}");
    let results = outcome["results"].as_array().expect("results");
    let by_group = |id: &str| {
        results
            .iter()
            .find(|r| r["group_id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_group(&ids[0])["outcome"], "stored", "{outcome}");
    assert_eq!(by_group(&ids[1])["outcome"], "failed");
    assert!(
        by_group(&ids[1])["error"]
            .as_str()
            .is_some_and(|e| e.contains("never negative")),
        "{outcome}"
    );
    assert_eq!(by_group(&ids[2])["outcome"], "failed");
    assert!(
        by_group(&ids[2])["error"]
            .as_str()
            .is_some_and(|e| e.contains("opsmanager.max_response_bytes")),
        "{outcome}"
    );

    // Only the honest group's backup exists, inside the backup folder.
    let root = env.database.dir.path();
    let written: Vec<_> = files_under(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(written, vec![env.expected_path(&ids[0])], "{written:?}");
    assert!(
        files_under(&env.dir)
            .iter()
            .all(|p| p.starts_with(&env.dir))
    );
    assert!(!root.join("etc").exists() && !env.dir.join("etc").exists());

    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(
        peak_kib < 160 * 1024,
        "peak RSS {peak_kib} KiB for a 50 MB body the cap refuses at 32 MiB"
    );
}
