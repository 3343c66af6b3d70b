//! The local backup folder: `{dir}/{groupId}/{version}-{md5}.json`. Writes are atomic (temp
//! file, fsync, rename) and serialized per group by a file lock. Blocking: callers run it on
//! the blocking pool.

use std::fs::File;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::catalog::{
    BackupEntry, GroupId, Outcome, PrunePolicy, Stored, VerifiedBackup, VerifyResult, backup_name,
    check_backup, parse_backup_name, parse_name_of, prune_plan, sort_entries,
};
use super::client::md5_hex;
use super::{AutomationConfig, OpsManagerError};
use crate::atomic_file::write_atomic;

/// Name of the per-group lock file.
const LOCK_FILE: &str = ".lock";

/// A folder of backups, one subfolder per group.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
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
            .join(backup_name(version, md5))
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

    /// Stores `config` unless the same version and content are already stored.
    pub fn store_if_changed(
        &self,
        group: &GroupId,
        config: &AutomationConfig,
    ) -> Result<Stored, OpsManagerError> {
        let md5 = md5_hex(&config.bytes);
        let path = self.path_for(group, config.version, &md5);
        let location = path.display().to_string();
        let _lock = self.lock_group(group)?;
        if path.is_file() {
            return Ok(Stored {
                outcome: Outcome::Unchanged,
                location,
                md5,
            });
        }
        write_atomic(&path, &config.bytes)
            .map_err(|e| OpsManagerError::io(format!("cannot write {location}"), e))?;
        Ok(Stored {
            outcome: Outcome::Stored,
            location,
            md5,
        })
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
                    path: item.path().display().to_string(),
                    bytes: meta.len(),
                    modified,
                });
            }
        }
        sort_entries(&mut entries);
        Ok(entries)
    }

    /// Recomputes the MD5 of every backup (of `group` when given).
    pub fn verify(&self, group: Option<&GroupId>) -> Result<Vec<VerifyResult>, OpsManagerError> {
        Ok(self
            .list(group)?
            .into_iter()
            .map(|entry| {
                let path = self.path_for(&entry.group_id, entry.version, &entry.md5);
                VerifyResult::of(entry, std::fs::read(path))
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
        let doomed = prune_plan(&self.list(group)?, policy, now);
        let mut groups: Vec<&GroupId> = doomed.iter().map(|e| &e.group_id).collect();
        groups.dedup();
        let mut deleted = Vec::new();
        for group in groups {
            let _lock = self.lock_group(group)?;
            for entry in doomed.iter().filter(|e| &e.group_id == group) {
                let path = self.path_for(group, entry.version, &entry.md5);
                std::fs::remove_file(&path).map_err(|e| {
                    OpsManagerError::io(format!("cannot delete {}", path.display()), e)
                })?;
                deleted.push(entry.clone());
            }
            let folder = self.dir.join(group.as_str());
            crate::atomic_file::sync_dir(&folder)
                .map_err(|e| OpsManagerError::io(format!("cannot sync {}", folder.display()), e))?;
        }
        Ok(deleted)
    }
}

/// Reads a backup file and checks its content against the MD5 and version in its name.
pub fn read_verified(path: &Path) -> Result<VerifiedBackup, OpsManagerError> {
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    parse_name_of(&shown, name)?;
    let bytes =
        std::fs::read(path).map_err(|e| OpsManagerError::io(format!("cannot read {shown}"), e))?;
    let group_id = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| GroupId::parse(n).ok());
    check_backup(&shown, name, bytes, group_id)
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
    fn store_list_verify_and_prune() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = LocalStore::new(dir.path());
        let group = GroupId::parse("g1")?;
        let outcome = |c| store.store_if_changed(&group, &c).map(|s| s.outcome);
        assert_eq!(outcome(config(1, "a"))?, Outcome::Stored);
        assert_eq!(outcome(config(1, "a"))?, Outcome::Unchanged);
        assert_eq!(outcome(config(2, "b"))?, Outcome::Stored);
        assert_eq!(outcome(config(3, "c"))?, Outcome::Stored);
        let listed = store.list(None)?;
        assert_eq!(
            listed.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert!(store.verify(None)?.iter().all(|v| v.ok));
        let newest = read_verified(Path::new(&listed[0].path))?;
        assert_eq!(newest.config, config(3, "c"));
        assert_eq!(newest.group_id, Some(group.clone()));
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
