//! The AWS calls behind the savings fixes: releasing Elastic IPs and deleting EBS volumes
//! (after a snapshot of each, by default), each with EC2's own dry run (`DryRunOperation`
//! means allowed), and the inventory the fix actions select from.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_sts::error::ProvideErrorMetadata;
use time::OffsetDateTime;

use super::ec2::tag_map;
use super::{AwsError, Part, Switched, to_time};
use crate::plugins::observe;
use crate::plugins::sdk::describe_sdk_error;

/// The tag put on the snapshot taken before a volume is deleted: its value is the volume id.
pub const DELETED_VOLUME_TAG: &str = "pincher:deleted-volume";

/// An Elastic IP or EBS volume as the fix actions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixable {
    /// Allocation id or volume id.
    pub id: String,
    /// `associated` or `unassociated` for addresses; the volume state (`available`,
    /// `in-use`, …) for volumes.
    pub state: String,
    /// What it is attached to, when it is.
    pub attached_to: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// When it was created, where AWS says.
    pub created: Option<OffsetDateTime>,
}

/// Every Elastic IP of one account × region.
pub async fn addresses_in(part: &Part) -> Result<Vec<Fixable>, AwsError> {
    Ok(super::savings::addresses_in(part)
        .await?
        .into_iter()
        .filter_map(|address| {
            // moto answers an unassociated address with empty strings, AWS with nothing.
            let attached_to = [&address.instance_id, &address.network_interface_id]
                .into_iter()
                .flatten()
                .find(|id| !id.is_empty())
                .cloned();
            Some(Fixable {
                id: address.allocation_id?,
                state: if attached_to.is_some() {
                    "associated"
                } else {
                    "unassociated"
                }
                .into(),
                attached_to,
                tags: tag_map(address.tags),
                created: None,
            })
        })
        .collect())
}

/// Every EBS volume of one account × region.
pub async fn volumes_in(part: &Part) -> Result<Vec<Fixable>, AwsError> {
    let storage = super::ebs::storage_in(part, false).await?;
    Ok(storage
        .volumes
        .into_iter()
        .filter_map(|volume| {
            Some(Fixable {
                attached_to: volume
                    .attachments
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|a| a.instance_id),
                id: volume.volume_id?,
                state: volume
                    .state
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                tags: tag_map(volume.tags),
                created: volume.create_time.as_ref().and_then(to_time),
            })
        })
        .collect())
}

/// Releases each Elastic IP (by allocation id), or with `dry_run` asks whether it may.
pub async fn release_addresses(
    config: &SdkConfig,
    ids: &[String],
    dry_run: bool,
) -> Vec<(String, Switched)> {
    let client = aws_sdk_ec2::Client::new(config);
    let mut done = Vec::with_capacity(ids.len());
    for id in ids {
        let released = observe(
            "aws",
            "ec2:ReleaseAddress",
            client
                .release_address()
                .allocation_id(id)
                .dry_run(dry_run)
                .send(),
        )
        .await;
        let outcome = match released {
            Ok(_) => Switched::Changed(Some("released".into())),
            Err(e) if e.code() == Some("DryRunOperation") => Switched::Allowed,
            Err(e) => Switched::Failed(describe_sdk_error(&e)),
        };
        done.push((id.clone(), outcome));
    }
    done
}

/// Deletes each EBS volume, after taking a snapshot of it when `snapshot` is set (a volume
/// whose snapshot fails is left alone). With `dry_run`, asks whether both calls may.
pub async fn delete_volumes(
    config: &SdkConfig,
    ids: &[String],
    snapshot: bool,
    dry_run: bool,
) -> Vec<(String, Switched)> {
    let client = aws_sdk_ec2::Client::new(config);
    let mut done = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = delete_volume(&client, id, snapshot, dry_run).await;
        done.push((id.clone(), outcome));
    }
    done
}

async fn delete_volume(
    client: &aws_sdk_ec2::Client,
    id: &str,
    snapshot: bool,
    dry_run: bool,
) -> Switched {
    let mut kept = None;
    if snapshot {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .tags(Tag::builder().key(DELETED_VOLUME_TAG).value(id).build())
            .build();
        let taken = observe(
            "aws",
            "ec2:CreateSnapshot",
            client
                .create_snapshot()
                .volume_id(id)
                .description(format!(
                    "pincher: {id} before aws.ebs.delete-volume deleted it"
                ))
                .tag_specifications(tags)
                .dry_run(dry_run)
                .send(),
        )
        .await;
        match taken {
            Ok(out) => kept = out.snapshot_id,
            Err(e) if e.code() == Some("DryRunOperation") => {}
            Err(e) => {
                return Switched::Failed(format!(
                    "the snapshot before deleting could not be taken, so the volume was \
                     kept: {}",
                    describe_sdk_error(&e)
                ));
            }
        }
    }
    let deleted = observe(
        "aws",
        "ec2:DeleteVolume",
        client.delete_volume().volume_id(id).dry_run(dry_run).send(),
    )
    .await;
    match (deleted, kept) {
        (Ok(_), Some(snapshot)) => Switched::Done {
            state: Some("deleted".into()),
            detail: format!("snapshot {snapshot} taken first"),
        },
        (Ok(_), None) => Switched::Changed(Some("deleted".into())),
        (Err(e), _) if e.code() == Some("DryRunOperation") => Switched::Allowed,
        (Err(e), Some(snapshot)) => Switched::Failed(format!(
            "{} (the snapshot {snapshot} was taken and is kept)",
            describe_sdk_error(&e)
        )),
        (Err(e), None) => Switched::Failed(describe_sdk_error(&e)),
    }
}
