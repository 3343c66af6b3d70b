//! The Organizations report: every account of the organization with its place in the
//! organizational-unit tree, and counts by status and unit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Aws, AwsError, PageCap, call, to_time};
use crate::plugins::Progress;
use crate::report::{Headline, Report, Scope, Tabular};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// Root user email.
    pub email: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
    /// When the account joined the organization (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub joined: Option<OffsetDateTime>,
    /// Path from the root, e.g. `Root/Engineering/Prod`.
    pub ou_path: String,
}

/// Counts of an Organizations report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// Accounts in the report.
    pub total: usize,
    /// Accounts by status.
    pub by_status: BTreeMap<String, usize>,
    /// Accounts by organizational-unit path.
    pub by_ou: BTreeMap<String, usize>,
}

impl Tabular for AccountRow {
    fn noun() -> &'static str {
        "accounts"
    }

    fn facets() -> Vec<&'static str> {
        vec!["status", "ou path"]
    }

    fn columns() -> Vec<&'static str> {
        vec!["id", "name", "email", "status", "joined", "ou path"]
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.email.clone(),
            self.status.clone(),
            self.joined
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            self.ou_path.clone(),
        ]
    }
}

/// Walks the organizational-unit tree from the roots: account id → path.
async fn ou_paths(
    client: &aws_sdk_organizations::Client,
) -> Result<BTreeMap<String, String>, AwsError> {
    let mut paths = BTreeMap::new();
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut roots = client.list_roots().into_paginator().send();
    let mut cap = PageCap::new("organizations:ListRoots");
    while let Some(page) = call("organizations:ListRoots", async {
        roots.next().await.transpose()
    })
    .await?
    {
        cap.count()?;
        for root in page.roots.unwrap_or_default() {
            if let Some(id) = root.id {
                pending.push((id, root.name.unwrap_or_else(|| "Root".into())));
            }
        }
    }
    while let Some((parent, path)) = pending.pop() {
        let mut accounts = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        let mut cap = PageCap::new("organizations:ListAccountsForParent");
        while let Some(page) = call("organizations:ListAccountsForParent", async {
            accounts.next().await.transpose()
        })
        .await?
        {
            cap.count()?;
            for account in page.accounts.unwrap_or_default() {
                if let Some(id) = account.id {
                    paths.insert(id, path.clone());
                }
            }
        }
        let mut units = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        let mut cap = PageCap::new("organizations:ListOrganizationalUnitsForParent");
        while let Some(page) = call("organizations:ListOrganizationalUnitsForParent", async {
            units.next().await.transpose()
        })
        .await?
        {
            cap.count()?;
            for unit in page.organizational_units.unwrap_or_default() {
                if let Some(id) = unit.id {
                    let name = unit.name.unwrap_or_else(|| id.clone());
                    pending.push((id, format!("{path}/{name}")));
                }
            }
        }
    }
    Ok(paths)
}

/// Builds the Organizations report from the management (or delegated admin) account.
#[tracing::instrument(skip_all)]
pub async fn account_report(
    aws: &Aws,
    progress: &dyn Progress,
) -> Result<Report<AccountRow, AccountSummary>, AwsError> {
    let now = OffsetDateTime::now_utc();
    progress.start(2);
    let accounts = aws.organization_accounts().await?;
    progress.advance("accounts");
    let client = aws_sdk_organizations::Client::new(aws.home_config());
    let (paths, errors) = match ou_paths(&client).await {
        Ok(paths) => (paths, Vec::new()),
        Err(e) => (
            BTreeMap::new(),
            vec![crate::report::ReportError {
                account: None,
                region: None,
                group: Some("organizational units".into()),
                reason: e.to_string(),
            }],
        ),
    };
    progress.advance("organizational units");
    progress.finish();
    let mut rows: Vec<AccountRow> = accounts
        .into_iter()
        .map(|a| {
            let id = a.id.unwrap_or_default();
            AccountRow {
                ou_path: paths.get(&id).cloned().unwrap_or_default(),
                name: a.name.unwrap_or_default(),
                email: a.email.unwrap_or_default(),
                status: a.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                joined: a.joined_timestamp.as_ref().and_then(to_time),
                id,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let mut summary = AccountSummary {
        total: rows.len(),
        ..AccountSummary::default()
    };
    for row in &rows {
        *summary.by_status.entry(row.status.clone()).or_default() += 1;
        *summary.by_ou.entry(row.ou_path.clone()).or_default() += 1;
    }
    Ok(Report {
        kind: "aws.organizations".into(),
        title: "AWS accounts".into(),
        scope: Scope {
            accounts: rows.iter().map(|r| r.id.clone()).collect(),
            ..Scope::default()
        },
        generated_at: now,
        rows,
        summary,
        errors,
        attempted: 2,
    })
}

impl Headline<AccountRow> for AccountSummary {}
