//! What a backup store holds, shared by the local folder and the S3 store: group ids, the
//! `{version}-{md5}.json` names, entries, check results and prune plans.

use serde::Serialize;
use time::OffsetDateTime;

use super::client::md5_hex;
use super::{AutomationConfig, OpsManagerError};

/// An Ops Manager group id, safe to use as a folder name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct GroupId(String);

impl GroupId {
    /// Accepts 1 to 64 ASCII letters and digits (Ops Manager ids are 24 hex characters).
    pub fn parse(text: &str) -> Result<Self, OpsManagerError> {
        let ok = (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(OpsManagerError::InvalidGroupId(text.to_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to one group in a backup run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = BackupOutcome)]
pub enum Outcome {
    /// A new backup was written.
    Stored,
    /// The same version and content were already stored; nothing was written.
    Unchanged,
    /// The group could not be backed up.
    Failed,
}

impl Outcome {
    /// The outcome as stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
        }
    }
}

/// The result of backing up one group. Its serde form is part of the JSON contract.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupBackup {
    /// The group.
    pub group_id: GroupId,
    /// Stored, unchanged or failed.
    pub outcome: Outcome,
    /// Version of the configuration, when it was read.
    pub version: Option<i64>,
    /// MD5 of the stored bytes, when it was read.
    pub md5: Option<String>,
    /// The backup (a file, or `s3://bucket/key`), when one exists for this configuration.
    pub path: Option<String>,
    /// Size of the configuration in bytes.
    pub bytes: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When work on the group started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// How long it took.
    pub duration_ms: u64,
}

/// One backup in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupEntry {
    /// The group (the folder name, or the key segment before the name).
    pub group_id: GroupId,
    /// Version of the configuration (from the name).
    pub version: i64,
    /// MD5 of the content (from the name).
    pub md5: String,
    /// The file, or `s3://bucket/key`.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// When it was written (the file's modification time, the object's last-modified time).
    #[serde(with = "time::serde::rfc3339")]
    pub modified: OffsetDateTime,
}

/// The result of checking one backup.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    /// The file checked.
    pub entry: BackupEntry,
    /// MD5 of the content, when it could be read.
    pub actual_md5: Option<String>,
    /// Whether the content matches its name.
    pub ok: bool,
    /// Why it could not be read.
    pub error: Option<String>,
}

impl VerifyResult {
    /// Checks the content read for `entry` (or why it could not be read) against its name.
    pub fn of<E: std::fmt::Display>(entry: BackupEntry, content: Result<Vec<u8>, E>) -> Self {
        match content {
            Ok(bytes) => {
                let actual = md5_hex(&bytes);
                Self {
                    ok: actual == entry.md5,
                    actual_md5: Some(actual),
                    error: None,
                    entry,
                }
            }
            Err(e) => Self {
                ok: false,
                actual_md5: None,
                error: Some(e.to_string()),
                entry,
            },
        }
    }
}

/// Which backups `prune` keeps. The newest backup of each group is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrunePolicy {
    /// Keep the N newest backups of each group.
    KeepLast(usize),
    /// Keep backups written in the last D days.
    KeepDays(u32),
}

/// A backup read back and checked against its name.
#[derive(Debug, Clone)]
pub struct VerifiedBackup {
    /// The group folder (or key segment) it sits in, when that is a group id.
    pub group_id: Option<GroupId>,
    /// The configuration, exactly as stored.
    pub config: AutomationConfig,
    /// Its MD5.
    pub md5: String,
}

/// What `store_if_changed` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Stored, or unchanged when the same name was already there.
    pub outcome: Outcome,
    /// Where the backup is: a file, or `s3://bucket/key`.
    pub location: String,
    /// MD5 of the stored bytes.
    pub md5: String,
}

/// Splits `{version}-{md5}.json` into its parts.
pub fn parse_backup_name(name: &str) -> Option<(i64, String)> {
    let stem = name.strip_suffix(".json")?;
    let (version, md5) = stem.split_once('-')?;
    let version = version.parse::<i64>().ok().filter(|v| *v >= 0)?;
    let md5_ok = md5.len() == 32 && md5.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    md5_ok.then(|| (version, md5.to_owned()))
}

/// The file name of a backup.
pub fn backup_name(version: i64, md5: &str) -> String {
    format!("{version}-{md5}.json")
}

/// Orders entries by group, then newest version (then newest write) first.
pub(crate) fn sort_entries(entries: &mut [BackupEntry]) {
    entries.sort_by(|a, b| {
        a.group_id
            .cmp(&b.group_id)
            .then(b.version.cmp(&a.version))
            .then(b.modified.cmp(&a.modified))
            .then(a.md5.cmp(&b.md5))
    });
}

/// The entries `policy` does not keep, from entries in [`sort_entries`] order. A group's
/// newest backup is always kept.
pub fn prune_plan(
    entries: &[BackupEntry],
    policy: PrunePolicy,
    now: OffsetDateTime,
) -> Vec<BackupEntry> {
    let mut doomed = Vec::new();
    let mut current: Option<&GroupId> = None;
    let mut rank = 0;
    for entry in entries {
        if current != Some(&entry.group_id) {
            current = Some(&entry.group_id);
            rank = 0;
        }
        let keep = rank == 0
            || match policy {
                PrunePolicy::KeepLast(n) => rank < n,
                PrunePolicy::KeepDays(days) => now
                    .checked_sub(time::Duration::days(i64::from(days)))
                    .is_none_or(|cutoff| entry.modified >= cutoff),
            };
        rank += 1;
        if !keep {
            doomed.push(entry.clone());
        }
    }
    doomed
}

/// Checks backup content read from `shown` (named `name`) against the MD5 and version in
/// its name.
pub(crate) fn check_backup(
    shown: &str,
    name: &str,
    bytes: Vec<u8>,
    group_id: Option<GroupId>,
) -> Result<VerifiedBackup, OpsManagerError> {
    let (version, expected) = parse_name_of(shown, name)?;
    let actual = md5_hex(&bytes);
    if actual != expected {
        return Err(OpsManagerError::ChecksumMismatch {
            path: shown.to_owned(),
            expected,
            actual,
        });
    }
    let config =
        AutomationConfig::from_bytes(bytes).map_err(|message| OpsManagerError::NotABackup {
            path: shown.to_owned(),
            message,
        })?;
    if config.version != version {
        return Err(OpsManagerError::NotABackup {
            path: shown.to_owned(),
            message: format!(
                "the content has version {} but the name says {version}",
                config.version
            ),
        });
    }
    Ok(VerifiedBackup {
        group_id,
        config,
        md5: actual,
    })
}

/// The version and MD5 in a backup's name, or why `shown` is not a backup.
pub(crate) fn parse_name_of(shown: &str, name: &str) -> Result<(i64, String), OpsManagerError> {
    parse_backup_name(name).ok_or_else(|| OpsManagerError::NotABackup {
        path: shown.to_owned(),
        message: "the name is not {version}-{md5}.json".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_group_ids_reject_paths() {
        assert_eq!(
            parse_backup_name("7-0123456789abcdef0123456789abcdef.json"),
            Some((7, "0123456789abcdef0123456789abcdef".into()))
        );
        assert_eq!(parse_backup_name("7-XYZ.json"), None);
        assert_eq!(parse_backup_name(".pincher-1.tmp"), None);
        assert!(GroupId::parse("../etc").is_err());
        assert!(GroupId::parse("").is_err());
        assert!(GroupId::parse("5f1b2c3d4e5f6a7b8c9d0e1f").is_ok());
    }

    fn entry(group: &str, version: i64, days_old: i64, now: OffsetDateTime) -> BackupEntry {
        BackupEntry {
            group_id: GroupId(group.into()),
            version,
            md5: format!("{version:032x}"),
            path: format!("{group}/{version}"),
            bytes: 1,
            modified: now - time::Duration::days(days_old),
        }
    }

    #[test]
    fn the_prune_plan_never_takes_a_groups_newest() {
        let now = OffsetDateTime::now_utc();
        let mut entries = vec![
            entry("a", 1, 40, now),
            entry("a", 3, 1, now),
            entry("a", 2, 20, now),
            entry("b", 1, 400, now),
        ];
        sort_entries(&mut entries);
        let versions = |plan: Vec<BackupEntry>| -> Vec<(String, i64)> {
            plan.into_iter()
                .map(|e| (e.group_id.to_string(), e.version))
                .collect()
        };
        assert_eq!(
            versions(prune_plan(&entries, PrunePolicy::KeepLast(1), now)),
            vec![("a".into(), 2), ("a".into(), 1)]
        );
        assert_eq!(
            versions(prune_plan(&entries, PrunePolicy::KeepDays(30), now)),
            vec![("a".into(), 1)]
        );
        assert!(prune_plan(&entries, PrunePolicy::KeepLast(3), now).is_empty());
        assert!(prune_plan(&entries, PrunePolicy::KeepDays(u32::MAX), now).is_empty());
    }
}
