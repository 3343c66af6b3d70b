//! Every AWS API call pincher makes, the IAM actions it needs, and the policy that grants
//! them. The policies in `infrastructure/terraform/policies/` are checked against this list,
//! and this list against the calls in the code, by this module's tests, so neither can drift.

/// Which least-privilege policy grants a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    /// Reports and savings: reads only (`read-only.json`).
    ReadOnly,
    /// The stop/start actions and the savings fixes (`operator.json`, attached with the
    /// read-only one).
    Operator,
    /// The S3 backup store, scoped to the bucket and prefix (`backups-s3.json.tftpl`).
    Backups,
    /// Assuming the member accounts' role for `--all-accounts`
    /// (`assume-members.json.tftpl`; the role's trust is `modules/member-role`).
    AssumeMembers,
    /// Calls no policy needs to grant: `sts:GetCallerIdentity` is always allowed.
    None,
}

/// One API call: its name as the code names it (`service:Operation`), the IAM actions it
/// needs, and the policy holding them.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The operation, as passed to the plugins' `call`/`observe`.
    pub operation: &'static str,
    /// The IAM actions it needs.
    pub actions: &'static [&'static str],
    /// Where they are granted.
    pub policy: Policy,
}

const fn call(operation: &'static str, actions: &'static [&'static str], policy: Policy) -> Call {
    Call {
        operation,
        actions,
        policy,
    }
}

/// Every call, by the commands and actions that make it (docs/aws-permissions.md).
pub const CALLS: &[Call] = &[
    call("sts:GetCallerIdentity", &[], Policy::None),
    call("sts:AssumeRole", &["sts:AssumeRole"], Policy::AssumeMembers),
    call(
        "ec2:DescribeRegions",
        &["ec2:DescribeRegions"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:DescribeInstances",
        &["ec2:DescribeInstances"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:DescribeVolumes",
        &["ec2:DescribeVolumes"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:DescribeSnapshots",
        &["ec2:DescribeSnapshots"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:DescribeAddresses",
        &["ec2:DescribeAddresses"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:DescribeImages",
        &["ec2:DescribeImages"],
        Policy::ReadOnly,
    ),
    call(
        "rds:DescribeDBInstances",
        &["rds:DescribeDBInstances"],
        Policy::ReadOnly,
    ),
    call(
        "rds:DescribeDBSnapshots",
        &["rds:DescribeDBSnapshots"],
        Policy::ReadOnly,
    ),
    call(
        "lambda:ListFunctions",
        &["lambda:ListFunctions"],
        Policy::ReadOnly,
    ),
    call("lambda:ListTags", &["lambda:ListTags"], Policy::ReadOnly),
    call(
        "organizations:ListAccounts",
        &["organizations:ListAccounts"],
        Policy::ReadOnly,
    ),
    call(
        "organizations:ListRoots",
        &["organizations:ListRoots"],
        Policy::ReadOnly,
    ),
    call(
        "organizations:ListAccountsForParent",
        &["organizations:ListAccountsForParent"],
        Policy::ReadOnly,
    ),
    call(
        "organizations:ListOrganizationalUnitsForParent",
        &["organizations:ListOrganizationalUnitsForParent"],
        Policy::ReadOnly,
    ),
    call(
        "ce:GetCostAndUsage",
        &["ce:GetCostAndUsage"],
        Policy::ReadOnly,
    ),
    call(
        "ce:GetCostForecast",
        &["ce:GetCostForecast"],
        Policy::ReadOnly,
    ),
    call(
        "ec2:StopInstances",
        &["ec2:StopInstances"],
        Policy::Operator,
    ),
    call(
        "ec2:StartInstances",
        &["ec2:StartInstances"],
        Policy::Operator,
    ),
    call(
        "rds:StopDBInstance",
        &["rds:StopDBInstance"],
        Policy::Operator,
    ),
    call(
        "rds:StartDBInstance",
        &["rds:StartDBInstance"],
        Policy::Operator,
    ),
    call(
        "ec2:ReleaseAddress",
        &["ec2:ReleaseAddress"],
        Policy::Operator,
    ),
    call(
        "ec2:CreateSnapshot",
        &["ec2:CreateSnapshot", "ec2:CreateTags"],
        Policy::Operator,
    ),
    call("ec2:DeleteVolume", &["ec2:DeleteVolume"], Policy::Operator),
    call("s3:HeadObject", &["s3:GetObject"], Policy::Backups),
    call("s3:GetObject", &["s3:GetObject"], Policy::Backups),
    call("s3:PutObject", &["s3:PutObject"], Policy::Backups),
    call("s3:ListObjectsV2", &["s3:ListBucket"], Policy::Backups),
    call("s3:DeleteObjects", &["s3:DeleteObject"], Policy::Backups),
];

/// The IAM actions a policy must grant: those of its calls, sorted, each once.
pub fn actions_of(policy: Policy) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = CALLS
        .iter()
        .filter(|c| c.policy == policy)
        .flat_map(|c| c.actions.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every `"service:Operation"` string of an AWS service in the Rust sources under `dir`.
    fn operations_in(dir: &Path, found: &mut BTreeSet<String>) {
        const SERVICES: &[&str] = &["ec2", "rds", "lambda", "organizations", "ce", "sts", "s3"];
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                operations_in(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("permissions.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for piece in text.split('"').skip(1).step_by(2) {
                    if let Some((service, operation)) = piece.split_once(':')
                        && SERVICES.contains(&service)
                        && operation
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_uppercase())
                        && operation.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        found.insert(piece.to_owned());
                    }
                }
            }
        }
    }

    /// The actions a policy document grants (placeholders of a template left as they are).
    fn policy_actions(file: &str) -> Vec<String> {
        let text =
            std::fs::read_to_string(root().join("infrastructure/terraform/policies").join(file))
                .unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let mut actions: Vec<String> = doc["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        actions.sort_unstable();
        actions.dedup();
        actions
    }

    #[test]
    fn the_list_holds_every_call_the_code_makes_and_no_other() {
        let mut in_code = BTreeSet::new();
        operations_in(&root().join("src"), &mut in_code);
        let listed: BTreeSet<String> = CALLS.iter().map(|c| c.operation.to_owned()).collect();
        assert!(in_code.len() >= 15, "found only {in_code:?}");
        assert_eq!(
            in_code, listed,
            "calls in the code vs src/plugins/aws/permissions.rs"
        );
    }

    #[test]
    fn each_policy_grants_exactly_its_calls_actions() {
        for (file, policy) in [
            ("read-only.json", Policy::ReadOnly),
            ("operator.json", Policy::Operator),
            ("backups-s3.json.tftpl", Policy::Backups),
            ("assume-members.json.tftpl", Policy::AssumeMembers),
        ] {
            assert_eq!(
                policy_actions(file),
                actions_of(policy),
                "{file} against the calls of {policy:?}"
            );
        }
    }

    #[test]
    fn the_permissions_doc_names_every_call() {
        let doc =
            std::fs::read_to_string(root().join("docs/aws-permissions.md")).unwrap_or_default();
        for call in CALLS {
            assert!(
                doc.contains(call.operation),
                "docs/aws-permissions.md lacks {}",
                call.operation
            );
        }
    }
}
