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
            ("AWS_CONFIG_FILE".into(), "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent".into()),
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
        let mut request = ec2
            .run_instances()
            .image_id(AMI)
            .min_count(count)
            .max_count(count)
            .instance_type(instance_type.into());
        if !tags.is_empty() {
            let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
            for (k, v) in tags {
                spec = spec.tags(Tag::builder().key(*k).value(*v).build());
            }
            request = request.tag_specifications(spec.build());
        }
        let output = request.send().await.expect("RunInstances");
        output
            .instances
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.instance_id)
            .collect()
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
