//! A backup folder that is full or read-only: the backup fails with a message naming the
//! cause, and leaves nothing partial behind. Each scenario runs pincher in a private mount
//! namespace (`unshare -m`) over a tiny or read-only tmpfs, so nothing leaks to the machine.

use crate::harness::{Env, stderr, stdout};
use crate::support::database::Backend;

/// Runs `pincher opsmanager backup --all-groups` over a tmpfs mounted with `mount_options`
/// at the backup folder, after `prepare` (shell) ran in it; returns the output and every file
/// left in the folder afterwards.
async fn backup_on_tmpfs(
    env: &Env,
    mount_options: &str,
    prepare: &str,
) -> (std::process::Output, Vec<String>) {
    std::fs::create_dir_all(&env.dir).expect("create the backup folder");
    let script = format!(
        "set -e\n\
         mount -t tmpfs -o {mount_options} pincher-test \"$1\"\n\
         cd \"$1\" && {prepare} && cd - >/dev/null\n\
         set +e\n\
         \"$2\" opsmanager backup --all-groups\n\
         rc=$?\n\
         echo '--files--'\n\
         (cd \"$1\" && find . -type f | sort)\n\
         exit $rc\n"
    );
    let output = env
        .command("unshare")
        .args(["-m", "sh", "-c", &script, "sh"])
        .arg(&env.dir)
        .arg(env!("CARGO_BIN_EXE_pincher"))
        .output()
        .await
        .expect("unshare (util-linux) is needed for the storage fault tests");
    let text = stdout(&output);
    let files = text
        .split("--files--\n")
        .nth(1)
        .unwrap_or_else(|| panic!("the scenario did not run: {}{}", text, stderr(&output)))
        .lines()
        .map(str::to_owned)
        .collect();
    (output, files)
}

fn assert_nothing_partial(files: &[String]) {
    for file in files {
        assert!(
            !file.ends_with(".json") && !file.ends_with(".tmp"),
            "left behind: {file} (all files: {files:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backup_folder_fails_clearly_and_leaves_nothing_partial() {
    let env = Env::new(Backend::Sqlite, 2).await;
    let (output, files) = backup_on_tmpfs(&env, "size=8k", "head -c 4096 /dev/zero > filler").await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "no group could be stored: {}",
        stderr(&output)
    );
    let err = stderr(&output).to_lowercase();
    assert!(err.contains("no space left"), "{err}");
    let report = format!("{}{err}", stdout(&output));
    for group in env.fake.group_ids() {
        assert!(report.contains(&group), "{group} is named: {report}");
    }
    assert!(files.contains(&"./filler".to_owned()), "{files:?}");
    assert_nothing_partial(&files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_backup_folder_fails_clearly_and_leaves_nothing_partial() {
    let env = Env::new(Backend::Sqlite, 2).await;
    let (output, files) = backup_on_tmpfs(&env, "ro,size=1m", "true").await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output).to_lowercase();
    assert!(err.contains("read-only file system"), "{err}");
    assert!(files.is_empty(), "{files:?}");
}
