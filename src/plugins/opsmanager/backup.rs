//! The local backup store of automation configurations: `{dir}/{groupId}/{version}-{md5}.json`,
//! the MD5 being that of exactly the bytes in the file. Writes are atomic and serialized per
//! group by a file lock; an unchanged configuration writes nothing. Also listing, verifying
//! and pruning, and backing up many groups at once under a bound.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::client::{OpsManagerClient, md5_hex};
use super::{AutomationConfig, OpsManagerError};
use crate::atomic_file::write_atomic;
use crate::plugins::Progress;

/// Name of the per-group lock file.
const LOCK_FILE: &str = ".lock";

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
    /// A new backup file was written.
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
    /// The backup file, when one exists for this configuration.
    #[schema(value_type = Option<String>)]
    pub path: Option<PathBuf>,
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

/// One backup file in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupEntry {
    /// The group (the folder name).
    pub group_id: GroupId,
    /// Version of the configuration (from the file name).
    pub version: i64,
    /// MD5 of the content (from the file name).
    pub md5: String,
    /// The file.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub modified: OffsetDateTime,
}

/// The result of checking one backup file.
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

/// Which backups `prune` keeps. The newest backup of each group is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrunePolicy {
    /// Keep the N newest backups of each group.
    KeepLast(usize),
    /// Keep backups written in the last D days.
    KeepDays(u32),
}

/// A backup file read back and checked against its name.
#[derive(Debug, Clone)]
pub struct VerifiedBackup {
    /// The group folder it sits in, when that is a group id.
    pub group_id: Option<GroupId>,
    /// The configuration, exactly as stored.
    pub config: AutomationConfig,
    /// Its MD5.
    pub md5: String,
}

/// The local folder of backups.
#[derive(Debug, Clone)]
pub struct BackupStore {
    dir: PathBuf,
}

/// Splits `{version}-{md5}.json` into its parts.
pub fn parse_backup_name(name: &str) -> Option<(i64, String)> {
    let stem = name.strip_suffix(".json")?;
    let (version, md5) = stem.split_once('-')?;
    let version = version.parse::<i64>().ok().filter(|v| *v >= 0)?;
    let md5_ok = md5.len() == 32 && md5.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    md5_ok.then(|| (version, md5.to_owned()))
}

impl BackupStore {
    /// A store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a configuration of `group` is stored.
    pub fn path_for(&self, group: &GroupId, version: i64, md5: &str) -> PathBuf {
        self.dir
            .join(group.as_str())
            .join(format!("{version}-{md5}.json"))
    }

    fn lock_group(&self, group: &GroupId) -> Result<File, OpsManagerError> {
        let folder = self.dir.join(group.as_str());
        if !folder.is_dir() {
            std::fs::create_dir_all(&folder).map_err(|e| {
                OpsManagerError::io(format!("cannot create {}", folder.display()), e)
            })?;
            crate::atomic_file::sync_dir(&self.dir).map_err(|e| {
                OpsManagerError::io(format!("cannot sync {}", self.dir.display()), e)
            })?;
        }
        let path = folder.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| OpsManagerError::io(format!("cannot open {}", path.display()), e))?;
        file.lock()
            .map_err(|e| OpsManagerError::io(format!("cannot lock {}", path.display()), e))?;
        Ok(file)
    }

    /// Stores `config` unless the same version and content are already stored. Blocking.
    pub fn store_if_changed(
        &self,
        group: &GroupId,
        config: &AutomationConfig,
    ) -> Result<(Outcome, PathBuf, String), OpsManagerError> {
        let md5 = md5_hex(&config.bytes);
        let path = self.path_for(group, config.version, &md5);
        let _lock = self.lock_group(group)?;
        if path.is_file() {
            return Ok((Outcome::Unchanged, path, md5));
        }
        write_atomic(&path, &config.bytes)
            .map_err(|e| OpsManagerError::io(format!("cannot write {}", path.display()), e))?;
        Ok((Outcome::Stored, path, md5))
    }

    /// Every backup, by group and newest version first; only `group` when given.
    pub fn list(&self, group: Option<&GroupId>) -> Result<Vec<BackupEntry>, OpsManagerError> {
        let mut entries = Vec::new();
        let groups: Vec<GroupId> = match group {
            Some(group) => vec![group.clone()],
            None => match std::fs::read_dir(&self.dir) {
                Ok(dir) => dir
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().and_then(|n| GroupId::parse(n).ok()))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(OpsManagerError::io(
                        format!("cannot read {}", self.dir.display()),
                        e,
                    ));
                }
            },
        };
        for group in groups {
            let folder = self.dir.join(group.as_str());
            let dir = match std::fs::read_dir(&folder) {
                Ok(dir) => dir,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(OpsManagerError::io(
                        format!("cannot read {}", folder.display()),
                        e,
                    ));
                }
            };
            for item in dir.filter_map(Result::ok) {
                let Some((version, md5)) = item.file_name().to_str().and_then(parse_backup_name)
                else {
                    continue;
                };
                let Ok(meta) = item.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let modified = meta
                    .modified()
                    .map(OffsetDateTime::from)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                entries.push(BackupEntry {
                    group_id: group.clone(),
                    version,
                    md5,
                    path: item.path(),
                    bytes: meta.len(),
                    modified,
                });
            }
        }
        entries.sort_by(|a, b| {
            a.group_id
                .cmp(&b.group_id)
                .then(b.version.cmp(&a.version))
                .then(b.modified.cmp(&a.modified))
                .then(a.md5.cmp(&b.md5))
        });
        Ok(entries)
    }

    /// Recomputes the MD5 of every backup (of `group` when given).
    pub fn verify(&self, group: Option<&GroupId>) -> Result<Vec<VerifyResult>, OpsManagerError> {
        Ok(self
            .list(group)?
            .into_iter()
            .map(|entry| match std::fs::read(&entry.path) {
                Ok(bytes) => {
                    let actual = md5_hex(&bytes);
                    VerifyResult {
                        ok: actual == entry.md5,
                        actual_md5: Some(actual),
                        error: None,
                        entry,
                    }
                }
                Err(e) => VerifyResult {
                    ok: false,
                    actual_md5: None,
                    error: Some(e.to_string()),
                    entry,
                },
            })
            .collect())
    }

    /// Deletes the backups `policy` does not keep, never a group's newest. Returns what was
    /// deleted.
    pub fn prune(
        &self,
        group: Option<&GroupId>,
        policy: PrunePolicy,
        now: OffsetDateTime,
    ) -> Result<Vec<BackupEntry>, OpsManagerError> {
        let entries = self.list(group)?;
        let mut deleted = Vec::new();
        let mut groups: Vec<&GroupId> = entries.iter().map(|e| &e.group_id).collect();
        groups.dedup();
        for group in groups {
            let _lock = self.lock_group(group)?;
            let newest_first: Vec<&BackupEntry> =
                entries.iter().filter(|e| &e.group_id == group).collect();
            for (rank, entry) in newest_first.iter().enumerate() {
                let keep = rank == 0
                    || match policy {
                        PrunePolicy::KeepLast(n) => rank < n,
                        PrunePolicy::KeepDays(days) => {
                            entry.modified >= now - time::Duration::days(i64::from(days))
                        }
                    };
                if keep {
                    continue;
                }
                std::fs::remove_file(&entry.path).map_err(|e| {
                    OpsManagerError::io(format!("cannot delete {}", entry.path.display()), e)
                })?;
                deleted.push((*entry).clone());
            }
            crate::atomic_file::sync_dir(&self.dir.join(group.as_str())).map_err(|e| {
                OpsManagerError::io(format!("cannot sync {}", self.dir.display()), e)
            })?;
        }
        Ok(deleted)
    }
}

/// Reads a backup file and checks its content against the MD5 in its name.
pub fn read_verified(path: &Path) -> Result<VerifiedBackup, OpsManagerError> {
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (version, expected) =
        parse_backup_name(name).ok_or_else(|| OpsManagerError::NotABackup {
            path: shown.clone(),
            message: "the name is not {version}-{md5}.json".into(),
        })?;
    let bytes =
        std::fs::read(path).map_err(|e| OpsManagerError::io(format!("cannot read {shown}"), e))?;
    let actual = md5_hex(&bytes);
    if actual != expected {
        return Err(OpsManagerError::ChecksumMismatch {
            path: shown,
            expected,
            actual,
        });
    }
    let config =
        AutomationConfig::from_bytes(bytes).map_err(|message| OpsManagerError::NotABackup {
            path: shown.clone(),
            message,
        })?;
    if config.version != version {
        return Err(OpsManagerError::NotABackup {
            path: shown,
            message: format!(
                "the content has version {} but the name says {version}",
                config.version
            ),
        });
    }
    let group_id = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| GroupId::parse(n).ok());
    Ok(VerifiedBackup {
        group_id,
        config,
        md5: actual,
    })
}

/// The groups to back up: those named, else every group the key sees when `all` is set,
/// else the configured `opsmanager.group_ids`.
pub async fn resolve_groups(
    client: &OpsManagerClient,
    named: &[String],
    all: bool,
    configured: &[String],
) -> Result<Vec<GroupId>, OpsManagerError> {
    let ids: Vec<String> = if !named.is_empty() {
        named.to_vec()
    } else if all {
        client
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect()
    } else if !configured.is_empty() {
        configured.to_vec()
    } else {
        return Err(OpsManagerError::NotConfigured("opsmanager.group_ids"));
    };
    let mut groups = ids
        .iter()
        .map(|id| GroupId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Backs up each group, at most `concurrency` at once. One group failing does not stop the
/// others; results come back in the order of `groups`.
#[tracing::instrument(skip_all, fields(groups = groups.len()))]
pub async fn back_up_groups(
    client: &OpsManagerClient,
    store: &BackupStore,
    groups: &[GroupId],
    concurrency: usize,
    progress: Arc<dyn Progress>,
) -> Vec<GroupBackup> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    progress.start(groups.len() as u64);
    for (index, group) in groups.iter().enumerate() {
        let (client, store, group) = (client.clone(), store.clone(), group.clone());
        let (semaphore, progress) = (semaphore.clone(), progress.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let result = back_up_group(&client, &store, &group).await;
            progress.advance(group.as_str());
            (index, result)
        });
    }
    let mut results: Vec<Option<GroupBackup>> = vec![None; groups.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    progress.finish();
    results
        .into_iter()
        .zip(groups)
        .map(|(result, group)| {
            result.unwrap_or_else(|| {
                failed(
                    group,
                    OffsetDateTime::now_utc(),
                    Instant::now(),
                    "the backup task panicked".into(),
                )
            })
        })
        .collect()
}

fn failed(
    group: &GroupId,
    started_at: OffsetDateTime,
    clock: Instant,
    error: String,
) -> GroupBackup {
    GroupBackup {
        group_id: group.clone(),
        outcome: Outcome::Failed,
        version: None,
        md5: None,
        path: None,
        bytes: None,
        error: Some(error),
        started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}

/// Fetches and stores one group's configuration.
pub async fn back_up_group(
    client: &OpsManagerClient,
    store: &BackupStore,
    group: &GroupId,
) -> GroupBackup {
    let started_at = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let config = match client.automation_config(group).await {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(group = %group, error = %e, "backup failed");
            return failed(group, started_at, clock, e.to_string());
        }
    };
    let (version, size) = (config.version, config.bytes.len() as u64);
    let stored = {
        let (store, group) = (store.clone(), group.clone());
        tokio::task::spawn_blocking(move || store.store_if_changed(&group, &config)).await
    };
    let stored = match stored {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => return failed(group, started_at, clock, e.to_string()),
        Err(e) => {
            return failed(
                group,
                started_at,
                clock,
                format!("the write task failed: {e}"),
            );
        }
    };
    let (outcome, path, md5) = stored;
    tracing::debug!(group = %group, version, outcome = outcome.as_str(), "backup done");
    GroupBackup {
        group_id: group.clone(),
        outcome,
        version: Some(version),
        md5: Some(md5),
        path: Some(path),
        bytes: Some(size),
        error: None,
        started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: i64, extra: &str) -> AutomationConfig {
        AutomationConfig {
            bytes: format!("{{\"version\":{version},\"x\":\"{extra}\"}}").into_bytes(),
            version,
        }
    }

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

    #[test]
    fn store_list_verify_and_prune() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = BackupStore::new(dir.path());
        let group = GroupId::parse("g1")?;
        assert_eq!(
            store.store_if_changed(&group, &config(1, "a"))?.0,
            Outcome::Stored
        );
        assert_eq!(
            store.store_if_changed(&group, &config(1, "a"))?.0,
            Outcome::Unchanged
        );
        assert_eq!(
            store.store_if_changed(&group, &config(2, "b"))?.0,
            Outcome::Stored
        );
        assert_eq!(
            store.store_if_changed(&group, &config(3, "c"))?.0,
            Outcome::Stored
        );
        let listed = store.list(None)?;
        assert_eq!(
            listed.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert!(store.verify(None)?.iter().all(|v| v.ok));
        let deleted = store.prune(None, PrunePolicy::KeepLast(1), OffsetDateTime::now_utc())?;
        assert_eq!(deleted.len(), 2);
        let later = OffsetDateTime::now_utc() + time::Duration::days(30);
        assert!(
            store
                .prune(None, PrunePolicy::KeepDays(1), later)?
                .is_empty()
        );
        assert_eq!(store.list(Some(&group))?.len(), 1);
        Ok(())
    }
}
