//! Backups of automation configurations, named `{groupId}/{version}-{md5}.json` (the MD5 being
//! that of exactly the bytes stored), in a store that is a local folder or an S3 bucket and
//! prefix. An unchanged configuration writes nothing. Also listing, verifying, pruning and
//! reading back, and backing up many groups at once under a bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::client::{OpsManagerClient, md5_hex};
use super::local_store::{self, LocalStore};
use super::s3_store::{self, S3Store};
use super::{AutomationConfig, OpsManagerError};
use crate::config::{AwsSettings, Settings};
use crate::plugins::Progress;
use crate::plugins::aws::{Aws, SharedAws};

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
                PrunePolicy::KeepDays(days) => {
                    entry.modified >= now - time::Duration::days(i64::from(days))
                }
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

/// Where a backup to read is: a local file, or an object given as `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupLocation {
    /// A local file.
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
}

impl BackupLocation {
    /// `s3://BUCKET/KEY` as an S3 object, anything else as a local path.
    pub fn parse(arg: &Path) -> Result<Self, OpsManagerError> {
        let Some(rest) = arg.to_str().and_then(|a| a.strip_prefix("s3://")) else {
            return Ok(Self::File(arg.to_owned()));
        };
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(OpsManagerError::InvalidLocation(
                arg.to_string_lossy().into_owned(),
            )),
        }
    }
}

impl std::fmt::Display for BackupLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// Where backups are kept: a local folder (the default) or an S3 bucket and prefix, with
/// the same names and the same behaviour.
#[derive(Debug, Clone)]
pub enum BackupStore {
    /// `{dir}/{groupId}/{version}-{md5}.json`.
    Local(LocalStore),
    /// `s3://{bucket}/{prefix}{groupId}/{version}-{md5}.json`.
    S3(S3Store),
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OpsManagerError> + Send + 'static,
) -> Result<T, OpsManagerError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        OpsManagerError::io(
            "the backup store task failed",
            std::io::Error::other(e.to_string()),
        )
    })?
}

impl BackupStore {
    /// The local folder `dir` (created on first write).
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self::Local(LocalStore::new(dir))
    }

    /// The store the settings name: `backups.s3_bucket` when set, else `backups.dir`.
    /// Reads the AWS configuration (files and environment) but does not call AWS.
    pub async fn from_settings(settings: &Settings) -> Self {
        Self::from_settings_with(settings, &SharedAws::default()).await
    }

    /// Like [`BackupStore::from_settings`], with the AWS configuration of a long-running
    /// process.
    pub async fn from_settings_with(settings: &Settings, aws: &SharedAws) -> Self {
        match settings.backups.bucket() {
            None => Self::local(settings.backups.dir.clone()),
            Some(bucket) => Self::S3(S3Store::new(
                s3_store::client(aws.get(&settings.aws).await),
                bucket,
                &settings.backups.prefix(),
            )),
        }
    }

    /// Stores `config` unless a backup of the same version and content is already stored.
    pub async fn store_if_changed(
        &self,
        group: &GroupId,
        config: &AutomationConfig,
    ) -> Result<Stored, OpsManagerError> {
        match self {
            Self::Local(store) => {
                let (store, group, config) = (store.clone(), group.clone(), config.clone());
                blocking(move || store.store_if_changed(&group, &config)).await
            }
            Self::S3(store) => store.store_if_changed(group, config).await,
        }
    }

    /// Every backup, by group and newest version first; only `group` when given.
    pub async fn list(&self, group: Option<&GroupId>) -> Result<Vec<BackupEntry>, OpsManagerError> {
        match self {
            Self::Local(store) => {
                let (store, group) = (store.clone(), group.cloned());
                blocking(move || store.list(group.as_ref())).await
            }
            Self::S3(store) => store.list(group).await,
        }
    }

    /// Recomputes the MD5 of every backup (of `group` when given).
    pub async fn verify(
        &self,
        group: Option<&GroupId>,
    ) -> Result<Vec<VerifyResult>, OpsManagerError> {
        match self {
            Self::Local(store) => {
                let (store, group) = (store.clone(), group.cloned());
                blocking(move || store.verify(group.as_ref())).await
            }
            Self::S3(store) => store.verify(group).await,
        }
    }

    /// Deletes the backups `policy` does not keep, never a group's newest. Returns what was
    /// deleted.
    pub async fn prune(
        &self,
        group: Option<&GroupId>,
        policy: PrunePolicy,
        now: OffsetDateTime,
    ) -> Result<Vec<BackupEntry>, OpsManagerError> {
        match self {
            Self::Local(store) => {
                let (store, group) = (store.clone(), group.cloned());
                blocking(move || store.prune(group.as_ref(), policy, now)).await
            }
            Self::S3(store) => store.prune(group, policy, now).await,
        }
    }

    /// Reads a backup and checks it against its name. An S3 object is read with this
    /// store's client, or, for a local store, with a client from `aws`.
    pub async fn read_verified(
        &self,
        location: &BackupLocation,
        aws: &AwsSettings,
    ) -> Result<VerifiedBackup, OpsManagerError> {
        match location {
            BackupLocation::File(path) => {
                let path = path.clone();
                blocking(move || local_store::read_verified(&path)).await
            }
            BackupLocation::S3 { bucket, key } => match self {
                Self::S3(store) => s3_store::read_verified(store.client(), bucket, key).await,
                Self::Local(_) => {
                    let client = s3_store::client(&Aws::load(aws, None).await);
                    s3_store::read_verified(&client, bucket, key).await
                }
            },
        }
    }
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
    let Stored {
        outcome,
        location,
        md5,
    } = match store.store_if_changed(group, &config).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(group = %group, error = %e, "backup failed");
            return failed(group, started_at, clock, e.to_string());
        }
    };
    tracing::debug!(group = %group, version, outcome = outcome.as_str(), "backup done");
    GroupBackup {
        group_id: group.clone(),
        outcome,
        version: Some(version),
        md5: Some(md5),
        path: Some(location),
        bytes: Some(size),
        error: None,
        started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
    }
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

    #[test]
    fn locations_are_s3_objects_or_files() -> Result<(), OpsManagerError> {
        assert_eq!(
            BackupLocation::parse(Path::new("s3://b-1/p/g1/1-x.json"))?,
            BackupLocation::S3 {
                bucket: "b-1".into(),
                key: "p/g1/1-x.json".into()
            }
        );
        assert_eq!(
            BackupLocation::parse(Path::new("backups/g1/1-x.json"))?,
            BackupLocation::File(PathBuf::from("backups/g1/1-x.json"))
        );
        for bad in ["s3://", "s3://bucket", "s3://bucket/", "s3:///key"] {
            assert!(BackupLocation::parse(Path::new(bad)).is_err(), "{bad}");
        }
        Ok(())
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
    }
}
