//! The S3 backup store: `s3://{bucket}/{prefix}{groupId}/{version}-{md5}.json`, the same names
//! as the local folder. One PutObject is atomic (no partial object is ever visible), carries
//! `Content-MD5` so S3 rejects a corrupted upload, and is conditional (`If-None-Match: *`) so
//! two runs cannot both write a name.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use base64::Engine;
use futures::StreamExt;
use md5::{Digest, Md5};
use time::OffsetDateTime;

use super::catalog::{
    BackupEntry, GroupId, Outcome, PrunePolicy, Stored, VerifiedBackup, VerifyResult, backup_name,
    check_backup, parse_backup_name, parse_name_of, prune_plan, sort_entries,
};
use super::{AutomationConfig, OpsManagerError};
use crate::plugins::observe;
use crate::plugins::sdk::{describe_chain, describe_sdk_error};

/// Most objects read at once by `verify`.
const VERIFY_CONCURRENCY: usize = 8;
/// Most keys one DeleteObjects call takes.
const DELETE_BATCH: usize = 1000;

/// An S3 client for the shared AWS SDK configuration. Path-style addressing is forced when
/// an endpoint override is set, as moto, LocalStack and MinIO need.
pub fn client(shared: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(shared.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

/// A bucket and key prefix holding backups.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    owner: Option<String>,
    encryption: Encryption,
}

/// How objects written to the bucket are encrypted at rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    /// S3-managed keys (`AES256`).
    #[default]
    S3Managed,
    /// AWS KMS, with this key (the bucket's default KMS key when `None`).
    Kms(Option<String>),
}

fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

fn s3_error<E>(
    operation: &'static str,
    location: String,
    err: &SdkError<E, HttpResponse>,
) -> OpsManagerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_owned).or_else(|| {
        err.raw_response()
            .map(|r| format!("HTTP {}", r.status().as_u16()))
    });
    OpsManagerError::S3 {
        operation,
        location,
        code,
        cause: describe_sdk_error(err),
    }
}

/// The HTTP status of a service's answer, when there was one.
fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

impl S3Store {
    /// Backups in `bucket` under `prefix` (a `/` is added to a non-empty prefix without one).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        Self {
            client,
            bucket: bucket.into(),
            prefix,
            owner: None,
            encryption: Encryption::default(),
        }
    }

    /// The same store, sending `owner` as `ExpectedBucketOwner` on every call (so a bucket
    /// that changed hands is refused rather than written to) and encrypting what it writes
    /// as `encryption` says.
    pub fn protected(mut self, owner: Option<String>, encryption: Encryption) -> Self {
        self.owner = owner;
        self.encryption = encryption;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, empty or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The account that must own the bucket, when one is set.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The key of a configuration of `group`.
    pub fn key_for(&self, group: &GroupId, version: i64, md5: &str) -> String {
        format!("{}{group}/{}", self.prefix, backup_name(version, md5))
    }

    /// Stores `config` unless an object of the same name (so the same version and content)
    /// is already there.
    #[tracing::instrument(skip_all, fields(group = %group, version = config.version))]
    pub async fn store_if_changed(
        &self,
        group: &GroupId,
        config: &AutomationConfig,
    ) -> Result<Stored, OpsManagerError> {
        let digest = Md5::digest(&config.bytes);
        let md5 = format!("{digest:x}");
        let key = self.key_for(group, config.version, &md5);
        let location = s3_uri(&self.bucket, &key);
        let unchanged = |location: String, md5: String| Stored {
            outcome: Outcome::Unchanged,
            location,
            md5,
        };
        let head = observe(
            "aws",
            "s3:HeadObject",
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .set_expected_bucket_owner(self.owner.clone())
                .send(),
        )
        .await;
        match head {
            Ok(_) => return Ok(unchanged(location, md5)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
            Err(e) => return Err(s3_error("HeadObject", location, &e)),
        }
        let put = observe(
            "aws",
            "s3:PutObject",
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(ByteStream::from(config.bytes.clone()))
                .content_md5(base64::engine::general_purpose::STANDARD.encode(digest))
                .content_type("application/json")
                .if_none_match("*")
                .set_expected_bucket_owner(self.owner.clone())
                .server_side_encryption(match self.encryption {
                    Encryption::S3Managed => ServerSideEncryption::Aes256,
                    Encryption::Kms(_) => ServerSideEncryption::AwsKms,
                })
                .set_ssekms_key_id(match &self.encryption {
                    Encryption::Kms(key) => key.clone(),
                    Encryption::S3Managed => None,
                })
                .send(),
        )
        .await;
        match put {
            Ok(_) => Ok(Stored {
                outcome: Outcome::Stored,
                location,
                md5,
            }),
            // Another run wrote this name between the HeadObject and the PutObject; the same
            // name means the same bytes, so the backup is there.
            Err(e) if status_of(&e) == Some(412) || e.code() == Some("PreconditionFailed") => {
                Ok(unchanged(location, md5))
            }
            Err(e) => Err(s3_error("PutObject", location, &e)),
        }
    }

    /// Every backup under the prefix (of `group` when given), by group and newest version
    /// first. Keys that are not `{groupId}/{version}-{md5}.json` are left out.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, group: Option<&GroupId>) -> Result<Vec<BackupEntry>, OpsManagerError> {
        let prefix = match group {
            Some(group) => format!("{}{group}/", self.prefix),
            None => self.prefix.clone(),
        };
        let location = s3_uri(&self.bucket, &prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .set_expected_bucket_owner(self.owner.clone())
            .into_paginator()
            .send();
        let mut entries = Vec::new();
        while let Some(page) = observe("aws", "s3:ListObjectsV2", async {
            pages.next().await.transpose()
        })
        .await
        .map_err(|e| s3_error("ListObjectsV2", location.clone(), &e))?
        {
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                let Some((group_id, version, md5)) = self.parse_key(&key) else {
                    continue;
                };
                let modified = object
                    .last_modified
                    .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                entries.push(BackupEntry {
                    group_id,
                    version,
                    md5,
                    path: s3_uri(&self.bucket, &key),
                    bytes: object.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified,
                });
            }
        }
        sort_entries(&mut entries);
        Ok(entries)
    }

    fn parse_key(&self, key: &str) -> Option<(GroupId, i64, String)> {
        let (group, name) = key.strip_prefix(&self.prefix)?.split_once('/')?;
        let group = GroupId::parse(group).ok()?;
        let (version, md5) = parse_backup_name(name)?;
        Some((group, version, md5))
    }

    /// Reads every backup (of `group` when given) and recomputes its MD5.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        group: Option<&GroupId>,
    ) -> Result<Vec<VerifyResult>, OpsManagerError> {
        let entries = self.list(group).await?;
        Ok(
            futures::stream::iter(entries.into_iter().map(|entry| async move {
                let key = self.key_for(&entry.group_id, entry.version, &entry.md5);
                VerifyResult::of(
                    entry,
                    get_bytes(&self.client, &self.bucket, &key, self.owner.as_deref()).await,
                )
            }))
            .buffered(VERIFY_CONCURRENCY)
            .collect()
            .await,
        )
    }

    /// Deletes the backups `policy` does not keep, never a group's newest. Returns what was
    /// deleted.
    #[tracing::instrument(skip_all)]
    pub async fn prune(
        &self,
        group: Option<&GroupId>,
        policy: PrunePolicy,
        now: OffsetDateTime,
    ) -> Result<Vec<BackupEntry>, OpsManagerError> {
        let doomed = prune_plan(&self.list(group).await?, policy, now);
        for batch in doomed.chunks(DELETE_BATCH) {
            let keys: Vec<String> = batch
                .iter()
                .map(|e| self.key_for(&e.group_id, e.version, &e.md5))
                .collect();
            let location = s3_uri(&self.bucket, &keys[0]);
            let invalid = |e: aws_sdk_s3::error::BuildError| OpsManagerError::S3 {
                operation: "DeleteObjects",
                location: location.clone(),
                code: None,
                cause: format!("cannot build the request: {e}"),
            };
            let objects = keys
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(invalid)?;
            let output = observe(
                "aws",
                "s3:DeleteObjects",
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .set_expected_bucket_owner(self.owner.clone())
                    .send(),
            )
            .await
            .map_err(|e| s3_error("DeleteObjects", location.clone(), &e))?;
            if let Some(failure) = output.errors.unwrap_or_default().into_iter().next() {
                let key = failure.key.unwrap_or_default();
                let cause = match (&failure.code, failure.message) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.clone(),
                    (None, message) => message.unwrap_or_else(|| "no reason given".into()),
                };
                return Err(OpsManagerError::S3 {
                    operation: "DeleteObjects",
                    location: s3_uri(&self.bucket, &key),
                    code: failure.code,
                    cause,
                });
            }
        }
        Ok(doomed)
    }
}

/// The whole body of an object.
async fn get_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    owner: Option<&str>,
) -> Result<Vec<u8>, OpsManagerError> {
    let location = s3_uri(bucket, key);
    let output = observe(
        "aws",
        "s3:GetObject",
        client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(owner.map(str::to_owned))
            .send(),
    )
    .await
    .map_err(|e| s3_error("GetObject", location.clone(), &e))?;
    let body = output
        .body
        .collect()
        .await
        .map_err(|e| OpsManagerError::S3 {
            operation: "GetObject",
            location,
            code: None,
            cause: format!("the body could not be read: {}", describe_chain(&e)),
        })?;
    Ok(body.into_bytes().to_vec())
}

/// Reads `s3://bucket/key` and checks its content against the MD5 and version in its name;
/// `owner`, when given, must own the bucket.
pub async fn read_verified(
    client: &Client,
    bucket: &str,
    key: &str,
    owner: Option<&str>,
) -> Result<VerifiedBackup, OpsManagerError> {
    let shown = s3_uri(bucket, key);
    let mut segments = key.rsplit('/');
    let name = segments.next().unwrap_or_default();
    parse_name_of(&shown, name)?;
    let group_id = segments.next().and_then(|g| GroupId::parse(g).ok());
    let bytes = get_bytes(client, bucket, key, owner).await?;
    check_backup(&shown, name, bytes, group_id)
}
