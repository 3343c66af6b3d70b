//! Backups of automation configurations, named `{groupId}/{version}-{md5}.json` (the MD5 being
//! that of exactly the bytes stored), in a store that is a local folder or an S3 bucket and
//! prefix. An unchanged configuration writes nothing. Also listing, verifying, pruning and
//! reading back, and backing up many groups at once under a bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

pub use super::catalog::{
    BackupEntry, GroupBackup, GroupId, Outcome, PrunePolicy, Stored, VerifiedBackup, VerifyResult,
};
use super::client::OpsManagerClient;
use super::local_store::{self, LocalStore};
use super::s3_store::{self, S3Store};
use super::{AutomationConfig, OpsManagerError};
use crate::plugins::Progress;

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

    /// The bucket `bucket`, under `prefix` (empty, or ending with `/`), through `client`.
    pub fn s3(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        Self::S3(S3Store::new(client, bucket, prefix))
    }

    /// The same store; a bucket store also checks the bucket's owner and encrypts as given.
    pub fn protected(self, owner: Option<String>, encryption: s3_store::Encryption) -> Self {
        match self {
            Self::S3(store) => Self::S3(store.protected(owner, encryption)),
            local => local,
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
    /// store's client, or, for a local store, with `s3` (which must then be given).
    pub async fn read_verified(
        &self,
        location: &BackupLocation,
        s3: Option<&aws_sdk_s3::Client>,
    ) -> Result<VerifiedBackup, OpsManagerError> {
        match location {
            BackupLocation::File(path) => {
                let path = path.clone();
                blocking(move || local_store::read_verified(&path)).await
            }
            BackupLocation::S3 { bucket, key } => match self {
                Self::S3(store) => {
                    let owner = store.owner().filter(|_| store.bucket() == bucket);
                    s3_store::read_verified(store.client(), bucket, key, owner).await
                }
                Self::Local(_) => match s3 {
                    Some(client) => s3_store::read_verified(client, bucket, key, None).await,
                    None => Err(OpsManagerError::S3 {
                        operation: "GetObject",
                        location: location.to_string(),
                        code: None,
                        cause: "no S3 client was given to read it".into(),
                    }),
                },
            },
        }
    }
}

/// The groups to back up, and the ids that cannot be groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedGroups {
    /// Valid group ids, sorted and without repeats.
    pub groups: Vec<GroupId>,
    /// Ids Ops Manager or the settings gave that are not group ids, each with why; they are
    /// reported, and the other groups are still backed up.
    pub rejected: Vec<(String, String)>,
}

/// The groups to back up: those named, else every group the key sees when `all` is set,
/// else the configured `opsmanager.group_ids`.
pub async fn resolve_groups(
    client: &OpsManagerClient,
    named: &[String],
    all: bool,
    configured: &[String],
) -> Result<ResolvedGroups, OpsManagerError> {
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
    let mut resolved = ResolvedGroups::default();
    for id in ids {
        match GroupId::parse(&id) {
            Ok(group) => resolved.groups.push(group),
            Err(e) => resolved.rejected.push((id, e.to_string())),
        }
    }
    resolved.groups.sort();
    resolved.groups.dedup();
    Ok(resolved)
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
        // Each group's task stays in this span (and its trace): the span outlives them all.
        tasks.spawn(
            async move {
                let _permit = semaphore.acquire_owned().await;
                let result = back_up_group(&client, &store, &group).await;
                progress.advance(group.as_str());
                (index, result)
            }
            .in_current_span(),
        );
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
}
