//! AWS: one shared SDK configuration from the standard credential chain, the choice of
//! accounts (Organizations + STS AssumeRole) and regions (DescribeRegions), and a bounded
//! concurrent fan-out over account × region that turns each failed part into a report error.

pub mod ce;
pub mod ebs;
pub mod ec2;
pub mod fixes;
pub mod lambdas;
pub mod organizations;
pub mod permissions;
pub mod prices;
pub mod rds;
pub mod savings;
mod traced;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use futures::future::Either;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::{AwsRetryMode, AwsSettings};
use crate::domain::service::Service;
use crate::plugins::sdk::describe_sdk_error;
use crate::plugins::{Progress, observe};
use crate::report::{Report, ReportError, Scope};

/// Region used for global APIs (STS, Organizations, Cost Explorer) when none is configured.
pub const DEFAULT_HOME_REGION: &str = "us-east-1";

/// Name of the session pincher opens in each assumed role.
const SESSION_NAME: &str = "pincher-report";

/// Why an AWS call or selection failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    /// An API call failed after the SDK's retries.
    #[error("{operation}: {message}")]
    Call {
        /// The API, e.g. `ec2:DescribeInstances`.
        operation: &'static str,
        /// The error code and message AWS returned, or the transport failure.
        message: String,
    },
    /// An account named with `--accounts` cannot be read.
    #[error("{0}")]
    Account(String),
    /// A response lacked a field pincher needs.
    #[error("{operation}: the response has no {field}")]
    Incomplete {
        /// The API.
        operation: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// An argument is not usable (bad date, unknown group, …).
    #[error("{0}")]
    Invalid(String),
    /// Every part of a report failed; the reason of the last one.
    #[error("{0}")]
    Unreadable(String),
}

/// Most pages one listing may take: a bound on a paging loop that a faulty or hostile
/// endpoint could otherwise keep going for ever (the SDK stops on a repeated token only).
pub const MAX_PAGES: u32 = 10_000;

/// Counts the pages of one listing against [`MAX_PAGES`].
pub(crate) struct PageCap {
    operation: &'static str,
    seen: u32,
}

impl PageCap {
    /// A count for `operation`'s pages.
    pub(crate) fn new(operation: &'static str) -> Self {
        Self { operation, seen: 0 }
    }

    /// Counts one more page; an error past [`MAX_PAGES`].
    pub(crate) fn count(&mut self) -> Result<(), AwsError> {
        self.seen += 1;
        if self.seen > MAX_PAGES {
            return Err(AwsError::Call {
                operation: self.operation,
                message: format!("more than {MAX_PAGES} pages; stopped reading"),
            });
        }
        Ok(())
    }
}

impl AwsError {
    /// Describes an SDK error by its AWS error code and message, else by what went wrong on
    /// the way (HTTP status, timeout, connection failure).
    pub fn from_sdk<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::Call {
            operation,
            message: describe_sdk_error(err),
        }
    }
}

/// Runs one AWS API call through [`observe`] and describes its error.
pub async fn call<T, E>(
    operation: &'static str,
    request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    observe("aws", operation, request)
        .await
        .map_err(|e| AwsError::from_sdk(operation, &e))
}

/// A power state change of instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Stop them.
    Stop,
    /// Start them.
    Start,
}

/// What one instance's state change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switched {
    /// The change was made; the state AWS reported after it.
    Changed(Option<String>),
    /// The change was made; the state after it, and what else was done on the way.
    Done {
        /// The state after it.
        state: Option<String>,
        /// What else was done (a snapshot taken first, say).
        detail: String,
    },
    /// A dry run: AWS says the change would be allowed.
    Allowed,
    /// AWS refused or failed it; its reason.
    Failed(String),
}

/// Which accounts a report reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountSelection {
    /// The account of the current credentials.
    #[default]
    Current,
    /// Every active account of the organization.
    All,
    /// These accounts (by id).
    Listed(Vec<String>),
}

/// Which regions a report reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegionSelection {
    /// The home region (`aws.region`, else the SDK's, else `us-east-1`).
    #[default]
    Home,
    /// These regions.
    Listed(Vec<String>),
    /// Every region enabled in each account (DescribeRegions).
    AllEnabled,
}

/// The account × region space of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Accounts to read.
    pub accounts: AccountSelection,
    /// Regions to read in each account.
    pub regions: RegionSelection,
}

impl Targets {
    /// The selection as report filters (`accounts`, `regions`), for the report's scope.
    pub fn describe(&self, filters: &mut BTreeMap<String, String>) {
        match &self.accounts {
            AccountSelection::Current => {}
            AccountSelection::All => {
                filters.insert("accounts".into(), "all".into());
            }
            AccountSelection::Listed(ids) => {
                filters.insert("accounts".into(), ids.join(","));
            }
        }
        match &self.regions {
            RegionSelection::Home => {}
            RegionSelection::AllEnabled => {
                filters.insert("regions".into(), "all".into());
            }
            RegionSelection::Listed(names) => {
                filters.insert("regions".into(), names.join(","));
            }
        }
    }
}

/// The shared AWS configuration: built once, cloned cheaply.
#[derive(Debug, Clone)]
pub struct Aws {
    base: SdkConfig,
    home_region: String,
    assume_role_name: String,
    concurrency: usize,
    per_account: usize,
}

impl Aws {
    /// Loads the SDK configuration from the standard chain (environment, profiles including
    /// SSO, web identity, container and instance metadata), with `profile` overriding
    /// `aws.profile`, and `aws.region` and `aws.endpoint_url` applied.
    pub async fn load(settings: &AwsSettings, profile: Option<&str>) -> Self {
        let profile = profile.or(settings.profile.as_deref());
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        let home_region = match &settings.region {
            Some(region) => region.clone(),
            None => home_region_from_environment(profile).await,
        };
        loader = loader.region(Region::new(home_region.clone()));
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.as_str().trim_end_matches('/'));
        }
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
                .operation_attempt_timeout(Duration::from_secs(settings.attempt_timeout_secs))
                .operation_timeout(Duration::from_secs(settings.operation_timeout_secs))
                .build(),
        );
        let attempts = settings.max_attempts.max(1);
        loader = loader.retry_config(
            match settings.retry_mode {
                AwsRetryMode::Adaptive => aws_config::retry::RetryConfig::adaptive(),
                AwsRetryMode::Standard => aws_config::retry::RetryConfig::standard(),
            }
            .with_max_attempts(attempts),
        );
        loader = loader.http_client(traced::client());
        let base = loader.load().await;
        Self {
            base,
            home_region,
            assume_role_name: settings.assume_role_name.clone(),
            concurrency: settings.concurrency.max(1),
            per_account: settings.concurrency_per_account.max(1),
        }
    }

    /// The same configuration with a different fan-out bound.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The region used for global APIs.
    pub fn home_region(&self) -> &str {
        &self.home_region
    }

    /// The SDK configuration of the current credentials in the home region.
    pub fn home_config(&self) -> &SdkConfig {
        &self.base
    }

    /// The account of the current credentials (STS GetCallerIdentity).
    pub async fn current_account(&self) -> Result<String, AwsError> {
        let sts = aws_sdk_sts::Client::new(&self.base);
        let identity = call("sts:GetCallerIdentity", sts.get_caller_identity().send()).await?;
        identity.account.ok_or(AwsError::Incomplete {
            operation: "sts:GetCallerIdentity",
            field: "Account",
        })
    }

    /// Every account of the organization, paged to the end.
    pub async fn organization_accounts(
        &self,
    ) -> Result<Vec<aws_sdk_organizations::types::Account>, AwsError> {
        self.organization_account_pages().try_concat().await
    }

    /// The organization's accounts, a page at a time, as they are read.
    fn organization_account_pages(
        &self,
    ) -> impl futures::Stream<Item = Result<Vec<aws_sdk_organizations::types::Account>, AwsError>> + use<>
    {
        const OPERATION: &str = "organizations:ListAccounts";
        let client = aws_sdk_organizations::Client::new(&self.base);
        // 20 is the most AWS returns in a page; asked for, so other endpoints page alike.
        let pages = client
            .list_accounts()
            .max_results(20)
            .into_paginator()
            .send();
        futures::stream::unfold(Some((pages, PageCap::new(OPERATION))), |state| async move {
            let (mut pages, mut cap) = state?;
            let page = call(OPERATION, async { pages.next().await.transpose() }).await;
            match page {
                Ok(Some(page)) => match cap.count() {
                    Ok(()) => Some((Ok(page.accounts.unwrap_or_default()), Some((pages, cap)))),
                    Err(e) => Some((Err(e), None)),
                },
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The SDK configuration to act in `account` × `region`: the current credentials for
    /// `current` (the current account), the assumed role in any other.
    pub async fn part_config(
        &self,
        account: &str,
        region: &str,
        current: &str,
    ) -> Result<SdkConfig, AwsError> {
        let config = if account == current {
            self.base.clone()
        } else {
            self.assume_account(account).await?
        };
        Ok(config
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build())
    }

    async fn assume_account(&self, account: &str) -> Result<SdkConfig, AwsError> {
        let sts = aws_sdk_sts::Client::new(&self.base);
        let role_arn = format!("arn:aws:iam::{account}:role/{}", self.assume_role_name);
        let output = call(
            "sts:AssumeRole",
            sts.assume_role()
                .role_arn(&role_arn)
                .role_session_name(SESSION_NAME)
                .send(),
        )
        .await?;
        let creds = output.credentials.ok_or(AwsError::Incomplete {
            operation: "sts:AssumeRole",
            field: "Credentials",
        })?;
        let expiry = u64::try_from(creds.expiration.secs())
            .ok()
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        let credentials = Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            Some(creds.session_token),
            expiry,
            "pincher-assume-role",
        );
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }

    /// The accounts named with `--accounts`, less those the organization (when it can be
    /// read) shows are not active members; each of those becomes an error instead.
    async fn listed_accounts(
        &self,
        ids: &[String],
        current: &str,
        errors: &mut Vec<ReportError>,
    ) -> Vec<String> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        // When the organization can be read, accounts outside it (or not active) fail here
        // rather than as an opaque AssumeRole denial in every region.
        if let Ok(members) = self.organization_accounts().await {
            let status: BTreeMap<String, String> = members
                .into_iter()
                .filter_map(|a| {
                    let id = a.id?;
                    let status = a
                        .status
                        .map_or_else(|| "ACTIVE".to_owned(), |s| s.as_str().to_owned());
                    Some((id, status))
                })
                .collect();
            ids.retain(|id| match status.get(id) {
                _ if id == current => true,
                Some(s) if s.eq_ignore_ascii_case("ACTIVE") => true,
                found => {
                    let reason = match found {
                        Some(s) => format!("the account is {s}, not ACTIVE"),
                        None => "the account is not a member of the organization".into(),
                    };
                    errors.push(account_error(id, &AwsError::Account(reason)));
                    false
                }
            });
        }
        ids
    }

    async fn enabled_regions(&self, config: &SdkConfig) -> Result<Vec<String>, AwsError> {
        let ec2 = aws_sdk_ec2::Client::new(config);
        let output = call(
            "ec2:DescribeRegions",
            ec2.describe_regions().all_regions(false).send(),
        )
        .await?;
        let mut regions: Vec<String> = output
            .regions
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                r.opt_in_status
                    .as_deref()
                    .is_none_or(|s| s != "not-opted-in")
            })
            .filter_map(|r| r.region_name)
            .collect();
        regions.sort();
        Ok(regions)
    }

    /// Runs `work` once per selected account × region, and returns the rows of the parts
    /// that succeeded; parts that fail (an account that cannot be assumed, a region that
    /// errors) become report errors.
    ///
    /// The steps are pipelined, so the calls in flight stay near `aws.concurrency` from the
    /// first page of the organization to the last part: an account's role is assumed as soon
    /// as its page of the organization arrives, and its parts start as soon as the role is
    /// assumed. Role, region and part calls share `aws.concurrency` slots (the listing of the
    /// organization, one page at a time, runs beside them), and each account has at most
    /// `aws.concurrency_per_account` parts in flight.
    pub async fn fan_out<T, F, Fut>(
        &self,
        targets: &Targets,
        progress: &dyn Progress,
        work: F,
    ) -> Result<FanOut<T>, AwsError>
    where
        F: Fn(Part) -> Fut,
        Fut: Future<Output = Result<Vec<T>, AwsError>>,
    {
        let slots = Semaphore::new(self.concurrency);
        let every_account = matches!(targets.accounts, AccountSelection::All);
        let mut listing = std::pin::pin!(self.organization_account_pages());
        let (current, first_page) = futures::join!(self.current_account(), async {
            if every_account {
                listing.next().await
            } else {
                None
            }
        });
        let current = current?;
        let mut listing_open = every_account;
        let mut errors = Vec::new();
        let first: Vec<String> = match &targets.accounts {
            AccountSelection::Current => vec![current.clone()],
            AccountSelection::Listed(ids) => self.listed_accounts(ids, &current, &mut errors).await,
            AccountSelection::All => match first_page {
                Some(page) => active_ids(page?),
                None => {
                    listing_open = false;
                    Vec::new()
                }
            },
        };
        let mut attempted = errors.len();

        let resolve = |id: String| {
            let (slots, current) = (&slots, &current);
            async move {
                let outcome = async {
                    let config = if id == *current {
                        self.base.clone()
                    } else {
                        let _slot = slots.acquire().await.ok();
                        self.assume_account(&id).await?
                    };
                    let regions = match &targets.regions {
                        RegionSelection::Home => vec![self.home_region.clone()],
                        RegionSelection::Listed(names) => names.clone(),
                        RegionSelection::AllEnabled => {
                            let _slot = slots.acquire().await.ok();
                            self.enabled_regions(&config).await?
                        }
                    };
                    Ok((Box::new(config), regions))
                }
                .await;
                Step::Account { id, outcome }
            }
        };
        let (slots, work) = (&slots, &work);
        let run_part = |part: Part, turns: Arc<Semaphore>| async move {
            let (account, region) = (part.account.clone(), part.region.clone());
            let _turn = turns.acquire().await.ok();
            let _slot = slots.acquire().await.ok();
            let result = work(part).await;
            if let Ok(found) = &result {
                progress.rows(found.len() as u64);
            }
            progress.advance(&format!("{account}/{region}"));
            Step::Part {
                account,
                region,
                result,
            }
        };

        let mut running = futures::stream::FuturesUnordered::new();
        running.extend(first.into_iter().map(|id| Either::Left(resolve(id))));
        let mut rows = Vec::new();
        let mut account_ids = BTreeSet::new();
        let mut region_names = BTreeSet::new();
        loop {
            tokio::select! {
                page = listing.next(), if listing_open => match page {
                    Some(page) => {
                        running.extend(active_ids(page?).into_iter().map(|id| Either::Left(resolve(id))));
                    }
                    None => listing_open = false,
                },
                Some(step) = running.next() => match step {
                    Step::Account { id, outcome: Ok((config, regions)) } => {
                        attempted += regions.len();
                        progress.start(regions.len() as u64);
                        let turns = Arc::new(Semaphore::new(self.per_account));
                        for region in regions {
                            region_names.insert(region.clone());
                            let part = Part {
                                config: config.to_builder().region(Region::new(region.clone())).build(),
                                account: id.clone(),
                                region,
                            };
                            running.push(Either::Right(run_part(part, Arc::clone(&turns))));
                        }
                        account_ids.insert(id);
                    }
                    Step::Account { id, outcome: Err(e) } => {
                        attempted += 1;
                        errors.push(account_error(&id, &e));
                    }
                    Step::Part { result: Ok(mut found), .. } => rows.append(&mut found),
                    Step::Part { account, region, result: Err(e) } => errors.push(ReportError {
                        account: Some(account),
                        region: Some(region),
                        group: None,
                        reason: e.to_string(),
                    }),
                },
                else => break,
            }
        }
        progress.finish();
        errors.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        Ok(FanOut {
            rows,
            errors,
            attempted,
            accounts: account_ids.into_iter().collect(),
            regions: region_names.into_iter().collect(),
        })
    }
}

/// What one step of a fan-out yields: an account's credentials and regions, or a part's rows.
enum Step<T> {
    Account {
        id: String,
        outcome: Result<(Box<SdkConfig>, Vec<String>), AwsError>,
    },
    Part {
        account: String,
        region: String,
        result: Result<Vec<T>, AwsError>,
    },
}

/// The ids of a page's active accounts.
fn active_ids(accounts: Vec<aws_sdk_organizations::types::Account>) -> Vec<String> {
    accounts
        .into_iter()
        .filter(|a| {
            a.status
                .as_ref()
                .is_none_or(|s| s.as_str().eq_ignore_ascii_case("ACTIVE"))
        })
        .filter_map(|a| a.id)
        .collect()
}

/// The region of `AWS_REGION`/`AWS_DEFAULT_REGION`, else of the profile, else
/// [`DEFAULT_HOME_REGION`]. Instance metadata is not asked: on a workstation it only adds
/// timeouts and warnings, and reports name their regions anyway.
async fn home_region_from_environment(profile: Option<&str>) -> String {
    use aws_config::environment::EnvironmentVariableRegionProvider;
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::profile::region::ProfileFileRegionProvider;
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(profile) = profile {
        from_profile = from_profile.profile_name(profile);
    }
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(from_profile.build())
        .region()
        .await
        .map_or_else(|| DEFAULT_HOME_REGION.to_owned(), |r| r.to_string())
}

fn account_error(account: &str, e: &AwsError) -> ReportError {
    ReportError {
        account: Some(account.to_owned()),
        region: None,
        group: None,
        reason: e.to_string(),
    }
}

/// A client of the SDK crate `$sdk` for a [`Part`], whose retries (their quota and, in
/// adaptive mode, the client-side rate limit) are its account's and region's own. The SDK
/// otherwise shares them across every client of a service in the process, so one throttled
/// account would slow the reading of every other; AWS throttles each account and region on
/// its own.
macro_rules! part_client {
    ($sdk:ident, $part:expr) => {{
        let part: &$crate::plugins::aws::Part = $part;
        $sdk::Client::from_conf(
            $sdk::config::Builder::from(&part.config)
                .retry_partition($sdk::config::retry::RetryPartition::new(format!(
                    "{}-{}-{}",
                    stringify!($sdk),
                    part.account,
                    part.region
                )))
                .build(),
        )
    }};
}
pub(crate) use part_client;

/// One account × region of a fan-out, with the SDK configuration to read it.
#[derive(Debug, Clone)]
pub struct Part {
    /// Account id.
    pub account: String,
    /// Region name.
    pub region: String,
    /// Credentials of the account, pointed at the region.
    pub config: SdkConfig,
}

/// What a fan-out gathered.
#[derive(Debug)]
pub struct FanOut<T> {
    /// Rows of every part that succeeded, in no particular order.
    pub rows: Vec<T>,
    /// One entry per account or region that failed.
    pub errors: Vec<ReportError>,
    /// Parts attempted (including accounts that failed before their regions were known).
    pub attempted: usize,
    /// Accounts read.
    pub accounts: Vec<String>,
    /// Regions read.
    pub regions: Vec<String>,
}

impl<T> FanOut<T> {
    /// The report of this fan-out: `rows` (made from [`FanOut::rows`], which the caller takes
    /// first) and their summary, with the fan-out's accounts, regions, errors and attempts.
    pub fn into_report<R, S>(
        self,
        kind: &str,
        title: &str,
        filters: BTreeMap<String, String>,
        generated_at: time::OffsetDateTime,
        rows: Vec<R>,
        summary: S,
    ) -> Report<R, S> {
        Report {
            kind: kind.into(),
            title: title.into(),
            scope: Scope {
                accounts: self.accounts,
                regions: self.regions,
                period: None,
                filters,
            },
            generated_at,
            rows,
            summary,
            errors: self.errors,
            attempted: self.attempted,
        }
    }
}

/// The [`Aws`] configuration of a long-running process, built on first use.
#[derive(Debug, Clone, Default)]
pub struct SharedAws {
    cell: std::sync::Arc<OnceCell<Aws>>,
}

impl SharedAws {
    /// The configuration, loaded from `settings` the first time.
    pub async fn get(&self, settings: &AwsSettings) -> &Aws {
        self.cell.get_or_init(|| Aws::load(settings, None)).await
    }
}

/// Whether `tags` match the wanted `KEY=VALUE` pairs as `--tag` means them in every
/// report: every key given must be on the resource, with one of the values given for it
/// (several values of one key are alternatives).
pub fn tags_match(wanted: &[(String, String)], tags: &BTreeMap<String, String>) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in wanted {
        by_key.entry(key).or_default().push(value);
    }
    by_key.iter().all(|(key, values)| {
        tags.get(*key)
            .is_some_and(|value| values.contains(&value.as_str()))
    })
}

/// Registered services as resource matchers: a service matches a resource when every one of
/// its tags is on the resource. When several match, the one with the most tags wins (then
/// the first by name); services without tags match nothing.
#[derive(Debug, Clone, Default)]
pub struct ServiceMatcher {
    services: Vec<(String, BTreeMap<String, String>)>,
}

impl ServiceMatcher {
    /// Builds a matcher from registered services.
    pub fn new(services: &[Service]) -> Self {
        let mut services: Vec<(String, BTreeMap<String, String>)> = services
            .iter()
            .filter(|s| !s.tags.is_empty())
            .map(|s| (s.name.clone(), s.tags.clone()))
            .collect();
        services.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        Self { services }
    }

    /// The service a resource with `tags` belongs to.
    pub fn service_of(&self, tags: &BTreeMap<String, String>) -> Option<&str> {
        self.services
            .iter()
            .find(|(_, wanted)| wanted.iter().all(|(k, v)| tags.get(k) == Some(v)))
            .map(|(name, _)| name.as_str())
    }
}

/// Seconds since the epoch of an SDK date-time as a UTC time.
pub fn to_time(t: &aws_sdk_sts::primitives::DateTime) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, tags: &[(&str, &str)]) -> Service {
        Service {
            id: uuid::Uuid::nil(),
            name: name.into(),
            display_name: None,
            description: String::new(),
            owner: "o".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            links: BTreeMap::new(),
            metadata: serde_json::Map::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            revision: 1,
        }
    }

    #[test]
    fn the_most_specific_service_wins() {
        let matcher = ServiceMatcher::new(&[
            service("billing", &[("service", "billing")]),
            service("billing-eu", &[("service", "billing"), ("region", "eu")]),
            service("untagged", &[]),
        ]);
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            matcher.service_of(&tags(&[("service", "billing"), ("region", "eu")])),
            Some("billing-eu")
        );
        assert_eq!(
            matcher.service_of(&tags(&[("service", "billing")])),
            Some("billing")
        );
        assert_eq!(matcher.service_of(&tags(&[("x", "y")])), None);
    }
}
