//! The moto server peer (started by `scripts/peers/moto.sh`) and seeding helpers. Every test
//! works in an organization of its own: a fresh management account (reached by assuming a
//! role into a random account id, which moto maps to that account) with member accounts
//! created through Organizations, so tests never see each other's resources.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

/// AMI moto knows about.
pub const AMI: &str = "ami-12c6146b";

/// The moto server's URL, from `PINCHER_TEST_MOTO_URL`.
pub fn moto_url() -> String {
    std::env::var("PINCHER_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "PINCHER_TEST_MOTO_URL is not set: the AWS tests need a moto server; \
             run them through ./scripts/test, which starts one (scripts/peers/moto.sh)"
        )
    })
}

/// Static credentials of one moto account.
#[derive(Debug, Clone)]
pub struct AccountCredentials {
    /// Account id.
    pub account: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
}

fn config_for(url: &str, credentials: Option<&AccountCredentials>, region: &str) -> SdkConfig {
    let creds = match credentials {
        Some(c) => Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            Some(c.session_token.clone()),
            None,
            "test",
        ),
        None => Credentials::new("testing", "testing", None, None, "test"),
    };
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(url)
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build()
}

async fn assume(
    url: &str,
    from: Option<&AccountCredentials>,
    account: &str,
    role: &str,
) -> AccountCredentials {
    let sts = aws_sdk_sts::Client::new(&config_for(url, from, "us-east-1"));
    let output = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("pincher-tests")
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto at {url}: AssumeRole into {account}: {e:?}"));
    let c = output.credentials.expect("credentials");
    AccountCredentials {
        account: account.to_owned(),
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
    }
}

/// An organization of its own on the moto server.
#[derive(Debug, Clone)]
pub struct MotoOrg {
    /// The moto server.
    pub url: String,
    /// The management account.
    pub management: AccountCredentials,
    /// Member accounts, in creation order.
    pub members: Vec<AccountCredentials>,
}

impl MotoOrg {
    /// A management account with an organization and `members` member accounts.
    pub async fn create(members: usize) -> Self {
        let url = moto_url();
        let id = format!("{:012}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000);
        let management = assume(&url, None, &id, "pincher-test-admin").await;
        let org =
            aws_sdk_organizations::Client::new(&config_for(&url, Some(&management), "us-east-1"));
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto at {url}: CreateOrganization: {e:?}"));
        let mut created = Vec::new();
        for i in 0..members {
            let status = org
                .create_account()
                .email(format!("member{i}@{id}.example.com"))
                .account_name(format!("member-{i}"))
                .send()
                .await
                .expect("CreateAccount")
                .create_account_status
                .expect("status");
            let member = status.account_id.expect("account id");
            created.push(
                assume(
                    &url,
                    Some(&management),
                    &member,
                    "OrganizationAccountAccessRole",
                )
                .await,
            );
        }
        Self {
            url,
            management,
            members: created,
        }
    }

    /// Every account, management first.
    pub fn accounts(&self) -> Vec<&AccountCredentials> {
        std::iter::once(&self.management)
            .chain(&self.members)
            .collect()
    }

    /// SDK configuration of `account` in `region`.
    pub fn config(&self, account: &AccountCredentials, region: &str) -> SdkConfig {
        config_for(&self.url, Some(account), region)
    }

    /// Environment of a `pincher` run as the management account.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "AWS_ACCESS_KEY_ID".into(),
                self.management.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.management.secret_access_key.clone(),
            ),
            (
                "AWS_SESSION_TOKEN".into(),
                self.management.session_token.clone(),
            ),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("PINCHER_AWS__ENDPOINT_URL".into(), self.url.clone()),
        ]
    }

    /// Launches `count` instances (one reservation) in `account` × `region`, returning their ids.
    pub async fn run_instances(
        &self,
        account: &AccountCredentials,
        region: &str,
        count: i32,
        instance_type: &str,
        tags: &[(&str, &str)],
    ) -> Vec<String> {
        let ec2 = aws_sdk_ec2::Client::new(&self.config(account, region));
        let request = ec2
            .run_instances()
            .image_id(AMI)
            .min_count(count)
            .max_count(count)
            .instance_type(instance_type.into());
        let output = request
            .set_tag_specifications(tag_specification(ResourceType::Instance, tags))
            .send()
            .await
            .expect("RunInstances");
        output
            .instances
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.instance_id)
            .collect()
    }

    /// Creates an EBS volume of `gib` GiB and `kind` in zone `a` of `region`, tagged with
    /// `tags`; returns its id.
    pub async fn create_volume(
        &self,
        account: &AccountCredentials,
        region: &str,
        gib: i32,
        kind: aws_sdk_ec2::types::VolumeType,
        tags: &[(&str, &str)],
    ) -> String {
        aws_sdk_ec2::Client::new(&self.config(account, region))
            .create_volume()
            .availability_zone(format!("{region}a"))
            .size(gib)
            .volume_type(kind)
            .set_tag_specifications(tag_specification(ResourceType::Volume, tags))
            .send()
            .await
            .expect("CreateVolume")
            .volume_id
            .expect("volume id")
    }

    /// Snapshots `volume`, tagging the snapshot with `tags`; returns its id.
    pub async fn create_snapshot(
        &self,
        account: &AccountCredentials,
        region: &str,
        volume: &str,
        tags: &[(&str, &str)],
    ) -> String {
        aws_sdk_ec2::Client::new(&self.config(account, region))
            .create_snapshot()
            .volume_id(volume)
            .set_tag_specifications(tag_specification(ResourceType::Snapshot, tags))
            .send()
            .await
            .expect("CreateSnapshot")
            .snapshot_id
            .expect("snapshot id")
    }

    /// Deletes `volume`.
    pub async fn delete_volume(&self, account: &AccountCredentials, region: &str, volume: &str) {
        aws_sdk_ec2::Client::new(&self.config(account, region))
            .delete_volume()
            .volume_id(volume)
            .send()
            .await
            .expect("DeleteVolume");
    }

    /// Stops instances.
    pub async fn stop_instances(&self, account: &AccountCredentials, region: &str, ids: &[String]) {
        aws_sdk_ec2::Client::new(&self.config(account, region))
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .expect("StopInstances");
    }
}

impl MotoOrg {
    /// The state of each instance of `ids` in `account` × `region`, by id.
    pub async fn instance_states(
        &self,
        account: &AccountCredentials,
        region: &str,
        ids: &[String],
    ) -> BTreeMap<String, String> {
        let output = aws_sdk_ec2::Client::new(&self.config(account, region))
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .expect("DescribeInstances");
        output
            .reservations
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default())
            .filter_map(|i| {
                let state = i.state?.name?.as_str().to_owned();
                Some((i.instance_id?, state))
            })
            .collect()
    }

    /// The status of the DB instance `identifier`.
    pub async fn db_status(
        &self,
        account: &AccountCredentials,
        region: &str,
        identifier: &str,
    ) -> String {
        aws_sdk_rds::Client::new(&self.config(account, region))
            .describe_db_instances()
            .db_instance_identifier(identifier)
            .send()
            .await
            .expect("DescribeDBInstances")
            .db_instances
            .unwrap_or_default()
            .into_iter()
            .find_map(|db| db.db_instance_status)
            .expect("a DB instance status")
    }

    /// Creates an Aurora PostgreSQL cluster with one member instance, both named after
    /// `cluster`, the member tagged with `tags`.
    pub async fn create_aurora_cluster(
        &self,
        account: &AccountCredentials,
        region: &str,
        cluster: &str,
        tags: &[(&str, &str)],
    ) {
        let rds = aws_sdk_rds::Client::new(&self.config(account, region));
        rds.create_db_cluster()
            .db_cluster_identifier(cluster)
            .engine("aurora-postgresql")
            .master_username("admin")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("CreateDBCluster");
        let mut member = rds
            .create_db_instance()
            .db_instance_identifier(format!("{cluster}-1"))
            .db_cluster_identifier(cluster)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large");
        for (k, v) in tags {
            member = member.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
        }
        member
            .send()
            .await
            .expect("CreateDBInstance (cluster member)");
    }

    /// Creates a DB instance.
    #[expect(
        clippy::too_many_arguments,
        reason = "one seed call per DB instance reads best"
    )]
    pub async fn create_db_instance(
        &self,
        account: &AccountCredentials,
        region: &str,
        identifier: &str,
        engine: &str,
        class: &str,
        storage_gib: i32,
        multi_az: bool,
        tags: &[(&str, &str)],
    ) {
        let mut request = aws_sdk_rds::Client::new(&self.config(account, region))
            .create_db_instance()
            .db_instance_identifier(identifier)
            .engine(engine)
            .db_instance_class(class)
            .allocated_storage(storage_gib)
            .multi_az(multi_az)
            .storage_type("gp3")
            .master_username("admin")
            .master_user_password("not-a-secret-1");
        for (k, v) in tags {
            request = request.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
        }
        request.send().await.expect("CreateDBInstance");
    }

    /// Creates an IAM role through moto's query API (moto does not check signatures).
    pub async fn create_role(&self, account: &AccountCredentials, name: &str) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "CreateRole")
            .append_pair("Version", "2010-05-08")
            .append_pair("RoleName", name)
            .append_pair("AssumeRolePolicyDocument", "{}")
            .finish();
        let response = reqwest::Client::new()
            .post(format!("{}/", self.url))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/iam/aws4_request, \
                     SignedHeaders=host, Signature=0",
                    account.access_key_id
                ),
            )
            .header("x-amz-security-token", &account.session_token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("CreateRole");
        assert!(
            response.status().is_success(),
            "CreateRole: {}",
            response.status()
        );
        format!("arn:aws:iam::{}:role/{name}", account.account)
    }

    /// Creates a Lambda function whose code is `code` (a zip archive).
    #[expect(
        clippy::too_many_arguments,
        reason = "one seed call per function reads best"
    )]
    pub async fn create_function(
        &self,
        account: &AccountCredentials,
        region: &str,
        role: &str,
        name: &str,
        runtime: &str,
        memory_mb: i32,
        timeout_secs: i32,
        code: &[u8],
    ) {
        aws_sdk_lambda::Client::new(&self.config(account, region))
            .create_function()
            .function_name(name)
            .runtime(runtime.into())
            .role(role)
            .handler("main.handler")
            .memory_size(memory_mb)
            .timeout(timeout_secs)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(code.to_vec()))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateFunction {name}: {e:?}"));
    }

    /// Tags the Lambda function `name` with `tags`, after its creation.
    pub async fn tag_function(
        &self,
        account: &AccountCredentials,
        region: &str,
        name: &str,
        tags: &[(&str, &str)],
    ) {
        let lambda = aws_sdk_lambda::Client::new(&self.config(account, region));
        let arn = lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .expect("GetFunction")
            .configuration
            .and_then(|c| c.function_arn)
            .expect("function arn");
        let mut request = lambda.tag_resource().resource(arn);
        for (key, value) in tags {
            request = request.tags(*key, *value);
        }
        request.send().await.expect("TagResource");
    }

    /// Creates the organizational unit `name` under `parent` (a root or unit id); returns its id.
    pub async fn create_unit(&self, parent: &str, name: &str) -> String {
        self.organizations()
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .expect("CreateOrganizationalUnit")
            .organizational_unit
            .and_then(|u| u.id)
            .expect("unit id")
    }

    /// The id of the organization's root.
    pub async fn root_id(&self) -> String {
        self.organizations()
            .list_roots()
            .send()
            .await
            .expect("ListRoots")
            .roots
            .unwrap_or_default()
            .into_iter()
            .find_map(|r| r.id)
            .expect("a root")
    }

    /// Moves `account` from `from` to `to`.
    pub async fn move_account(&self, account: &str, from: &str, to: &str) {
        self.organizations()
            .move_account()
            .account_id(account)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
            .expect("MoveAccount");
    }

    /// Queues Cost Explorer results for the management account: GetCostAndUsage answers
    /// each new request with the next one (and repeats it for the same request).
    pub async fn queue_cost_results(&self, results: Vec<serde_json::Value>) {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/static/ce/cost-and-usage-results",
                self.url
            ))
            .json(&serde_json::json!({"account_id": self.management.account, "results": results}))
            .send()
            .await
            .expect("seed Cost Explorer results");
        assert_eq!(
            response.status().as_u16(),
            201,
            "seeding Cost Explorer results"
        );
    }

    fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config(&self.management, "us-east-1"))
    }
}

/// One tag specification of `resource` holding `tags`; none when `tags` is empty.
fn tag_specification(
    resource: ResourceType,
    tags: &[(&str, &str)],
) -> Option<Vec<TagSpecification>> {
    if tags.is_empty() {
        return None;
    }
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    Some(vec![spec.build()])
}

/// A zip archive holding one small Python file.
pub fn lambda_zip() -> Vec<u8> {
    let content = b"def handler(event, context):\n    return 1\n";
    let name = b"main.py";
    let crc = crc32(content);
    let mut zip = Vec::new();
    let local = |zip: &mut Vec<u8>| {
        zip.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend_from_slice(&crc.to_le_bytes());
        zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
        zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip.extend_from_slice(name);
        zip.extend_from_slice(content);
    };
    local(&mut zip);
    let central_at = zip.len() as u32;
    zip.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(content.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&[0; 12]);
    zip.extend_from_slice(&0u32.to_le_bytes());
    zip.extend_from_slice(name);
    let central_len = zip.len() as u32 - central_at;
    zip.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&central_len.to_le_bytes());
    zip.extend_from_slice(&central_at.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Tags as a map, for comparisons.
pub fn tag_map(tags: &[(&str, &str)]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Checks that an HTML document's elements nest and close properly (void elements aside)
/// and returns the first problem found.
pub fn check_well_formed_html(html: &str) -> Result<(), String> {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr",
    ];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').ok_or("an unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("a malformed tag <{tag}>"));
        }
        if closing {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else if !(VOID.contains(&name.as_str()) || tag.ends_with('/')) {
            if name == "style" || name == "script" {
                let close = format!("</{name}>");
                let at = rest
                    .find(&close)
                    .ok_or(format!("<{name}> is never closed"))?;
                rest = &rest[at + close.len()..];
                continue;
            }
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed elements: {stack:?}"))
    }
}

/// One bucket of seeded Cost Explorer results: `groups` as (key, amount in USD) of `metric`.
pub fn ce_groups(
    start: &str,
    end: &str,
    metric: &str,
    groups: &[(&str, &str)],
    estimated: bool,
) -> serde_json::Value {
    serde_json::json!({
        "TimePeriod": {"Start": start, "End": end},
        "Total": {},
        "Groups": groups.iter().map(|(key, amount)| serde_json::json!({
            "Keys": [key],
            "Metrics": {metric: {"Amount": amount, "Unit": "USD"}},
        })).collect::<Vec<_>>(),
        "Estimated": estimated,
    })
}

/// One ungrouped bucket of seeded Cost Explorer results: `amount` USD of UnblendedCost.
pub fn ce_total(start: &str, end: &str, amount: &str) -> serde_json::Value {
    serde_json::json!({
        "TimePeriod": {"Start": start, "End": end},
        "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
        "Groups": [],
        "Estimated": false,
    })
}
