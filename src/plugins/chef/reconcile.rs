//! Chef nodes reconciled with an EC2 inventory, joined on the nodes' `ec2.instance_id`
//! automatic attribute: instances no node manages, and nodes whose instance is gone or
//! stopped. Pure logic over the nodes and an inventory described in this module's own terms;
//! the `chef.reconcile` action reads both and brings them here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::nodes::ChefNode;
use crate::report::{Figure, Headline, Report, ReportError, Scope, Tabular, number};

/// One EC2 instance of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2InstanceRef {
    /// Owning account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Instance id, e.g. `i-0abc…`.
    pub instance_id: String,
    /// EC2 state name: `pending`, `running`, `stopping`, `stopped`, `shutting-down` or
    /// `terminated`.
    pub state: String,
    /// The `Name` tag, when set.
    pub name: Option<String>,
}

/// The EC2 inventory nodes are reconciled with: its instances and what it covered.
#[derive(Debug, Clone, Default)]
pub struct Ec2Inventory {
    /// Every instance read.
    pub instances: Vec<Ec2InstanceRef>,
    /// Accounts read (empty: not known, nothing is excluded by account).
    pub accounts: Vec<String>,
    /// Regions read (empty: not known, nothing is excluded by region).
    pub regions: Vec<String>,
    /// Account × region parts that could not be read.
    pub errors: Vec<ReportError>,
    /// How many account × region parts were attempted.
    pub attempted: usize,
}

/// What a row reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// A live instance that no Chef node claims.
    InstanceWithoutNode,
    /// A node whose instance is terminated or no longer exists.
    NodeInstanceGone,
    /// A node whose instance is stopped or stopping.
    NodeInstanceStopped,
    /// One of several nodes that claim the same instance.
    DuplicateNode,
}

impl Finding {
    /// The snake_case name used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstanceWithoutNode => "instance_without_node",
            Self::NodeInstanceGone => "node_instance_gone",
            Self::NodeInstanceStopped => "node_instance_stopped",
            Self::DuplicateNode => "duplicate_node",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRow {
    /// What is wrong.
    pub finding: Finding,
    /// Account of the instance (from EC2, else from the node's `ec2.account_id`).
    pub account: Option<String>,
    /// Region of the instance (from EC2, else from the node's EC2 facts).
    pub region: Option<String>,
    /// Instance id.
    pub instance_id: Option<String>,
    /// EC2 state, when the instance exists.
    pub instance_state: Option<String>,
    /// The instance's `Name` tag.
    pub instance_name: Option<String>,
    /// Node name, for node findings.
    pub node: Option<String>,
    /// The node's Chef environment.
    pub environment: Option<String>,
    /// The node's last Chef run (RFC 3339).
    pub last_run: Option<String>,
}

impl Tabular for ReconcileRow {
    fn noun() -> &'static str {
        "findings"
    }

    fn facets() -> Vec<&'static str> {
        vec!["finding", "environment", "region"]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "finding",
            "account",
            "region",
            "instance_id",
            "instance_state",
            "instance_name",
            "node",
            "environment",
            "last_run",
        ]
    }

    fn cells(&self) -> Vec<String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.finding.as_str().to_owned(),
            opt(&self.account),
            opt(&self.region),
            opt(&self.instance_id),
            opt(&self.instance_state),
            opt(&self.instance_name),
            opt(&self.node),
            opt(&self.environment),
            opt(&self.last_run),
        ]
    }
}

/// Counts of a reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileSummary {
    /// Instances in the inventory.
    pub instances: usize,
    /// Chef nodes read.
    pub nodes: usize,
    /// Nodes with an `ec2.instance_id`.
    pub nodes_on_ec2: usize,
    /// Nodes whose instance is pending or running.
    pub matched: usize,
    /// Live instances no node claims.
    pub instances_without_node: usize,
    /// Nodes whose instance is gone.
    pub nodes_instance_gone: usize,
    /// Nodes whose instance is stopped.
    pub nodes_instance_stopped: usize,
    /// Nodes sharing an instance with another node.
    pub duplicate_nodes: usize,
    /// Nodes whose account or region the inventory did not cover (not judged).
    pub nodes_outside_scope: usize,
    /// Nodes whose account or region failed to read (not judged).
    pub nodes_not_checked: usize,
}

fn normalize_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

fn is_gone(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

fn is_stopped(state: &str) -> bool {
    matches!(state, "stopped" | "stopping")
}

/// How an instance the inventory does not hold relates to the inventory's coverage.
enum Coverage {
    Covered,
    OutsideScope,
    NotChecked,
}

fn coverage(node: &ChefNode, inventory: &Ec2Inventory) -> Coverage {
    let outside = |known: &Option<String>, covered: &[String]| {
        known
            .as_ref()
            .is_some_and(|value| !covered.is_empty() && !covered.contains(value))
    };
    if outside(&node.account_id, &inventory.accounts) || outside(&node.region, &inventory.regions) {
        return Coverage::OutsideScope;
    }
    let may_hold = |part: &Option<String>, known: &Option<String>| match (part, known) {
        (Some(part), Some(known)) => part == known,
        _ => true,
    };
    let failed = inventory
        .errors
        .iter()
        .any(|e| may_hold(&e.account, &node.account_id) && may_hold(&e.region, &node.region));
    if failed {
        Coverage::NotChecked
    } else {
        Coverage::Covered
    }
}

fn node_row(
    finding: Finding,
    node: &ChefNode,
    instance: Option<&Ec2InstanceRef>,
    instance_id: &str,
) -> ReconcileRow {
    ReconcileRow {
        finding,
        account: instance
            .map(|i| i.account.clone())
            .or_else(|| node.account_id.clone()),
        region: instance
            .map(|i| i.region.clone())
            .or_else(|| node.region.clone()),
        instance_id: Some(instance_id.to_owned()),
        instance_state: instance.map(|i| i.state.clone()),
        instance_name: instance.and_then(|i| i.name.clone()),
        node: Some(node.name.clone()),
        environment: Some(node.environment.clone()),
        last_run: node.last_run(),
    }
}

/// Joins `nodes` with `inventory`. Nodes whose account or region the inventory did not
/// cover, or failed to read, are counted but not judged; the inventory's failures are the
/// report's errors, so a partial inventory gives a partial report.
pub fn reconcile(
    nodes: &[ChefNode],
    inventory: &Ec2Inventory,
    generated_at: OffsetDateTime,
) -> Report<ReconcileRow, ReconcileSummary> {
    let instances: BTreeMap<String, &Ec2InstanceRef> = inventory
        .instances
        .iter()
        .map(|i| (normalize_id(&i.instance_id), i))
        .collect();
    let mut claims: BTreeMap<String, Vec<&ChefNode>> = BTreeMap::new();
    for node in nodes {
        if let Some(id) = node.instance_id.as_deref().map(normalize_id)
            && !id.is_empty()
        {
            claims.entry(id).or_default().push(node);
        }
    }
    let mut summary = ReconcileSummary {
        instances: inventory.instances.len(),
        nodes: nodes.len(),
        nodes_on_ec2: claims.values().map(Vec::len).sum(),
        ..ReconcileSummary::default()
    };
    let mut rows = Vec::new();

    for (id, instance) in &instances {
        let state = instance.state.to_ascii_lowercase();
        if !claims.contains_key(id) && !is_gone(&state) {
            summary.instances_without_node += 1;
            rows.push(ReconcileRow {
                finding: Finding::InstanceWithoutNode,
                account: Some(instance.account.clone()),
                region: Some(instance.region.clone()),
                instance_id: Some(instance.instance_id.clone()),
                instance_state: Some(instance.state.clone()),
                instance_name: instance.name.clone(),
                node: None,
                environment: None,
                last_run: None,
            });
        }
    }

    for (id, claimants) in &claims {
        let instance = instances.get(id).copied();
        if claimants.len() > 1 {
            for node in claimants {
                summary.duplicate_nodes += 1;
                rows.push(node_row(Finding::DuplicateNode, node, instance, id));
            }
        }
        for node in claimants {
            let finding = match instance {
                Some(instance) => {
                    let state = instance.state.to_ascii_lowercase();
                    if is_gone(&state) {
                        Some(Finding::NodeInstanceGone)
                    } else if is_stopped(&state) {
                        Some(Finding::NodeInstanceStopped)
                    } else {
                        summary.matched += 1;
                        None
                    }
                }
                None => match coverage(node, inventory) {
                    Coverage::Covered => Some(Finding::NodeInstanceGone),
                    Coverage::OutsideScope => {
                        summary.nodes_outside_scope += 1;
                        None
                    }
                    Coverage::NotChecked => {
                        summary.nodes_not_checked += 1;
                        None
                    }
                },
            };
            match finding {
                Some(Finding::NodeInstanceGone) => summary.nodes_instance_gone += 1,
                Some(Finding::NodeInstanceStopped) => summary.nodes_instance_stopped += 1,
                _ => {}
            }
            if let Some(finding) = finding {
                rows.push(node_row(finding, node, instance, id));
            }
        }
    }

    rows.sort_by(|a, b| {
        (a.finding, &a.account, &a.region, &a.instance_id, &a.node).cmp(&(
            b.finding,
            &b.account,
            &b.region,
            &b.instance_id,
            &b.node,
        ))
    });
    Report {
        kind: "chef.reconcile".into(),
        title: "Chef nodes and EC2 instances".into(),
        scope: Scope {
            accounts: inventory.accounts.clone(),
            regions: inventory.regions.clone(),
            ..Scope::default()
        },
        generated_at,
        rows,
        summary,
        errors: inventory.errors.clone(),
        attempted: inventory.attempted.max(inventory.errors.len()),
    }
}

impl Headline<ReconcileRow> for ReconcileSummary {
    fn figures(&self, _rows: &[ReconcileRow]) -> Vec<Figure> {
        vec![
            Figure::new("Matched", number(self.matched as f64, 0)).noted(format!(
                "of {} instances, {} nodes",
                self.instances, self.nodes
            )),
            Figure::new(
                "Instances without a node",
                number(self.instances_without_node as f64, 0),
            ),
            Figure::new(
                "Nodes whose instance is gone",
                number(self.nodes_instance_gone as f64, 0),
            ),
        ]
    }

    fn empty(&self) -> Option<String> {
        Some("Every instance has its node and every node its instance.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{ReportFormat, Templates, render_report};
    use crate::report::Completeness;
    use serde_json::json;

    const ACCOUNT: &str = "111111111111";

    fn instance(id: &str, region: &str, state: &str) -> Ec2InstanceRef {
        Ec2InstanceRef {
            account: ACCOUNT.into(),
            region: region.into(),
            instance_id: id.into(),
            state: state.into(),
            name: Some(format!("name-of-{id}")),
        }
    }

    fn node(name: &str, instance_id: Option<&str>, az: Option<&str>) -> ChefNode {
        ChefNode::from_search_data(&json!({
            "name": name, "chef_environment": "prod", "ohai_time": 1_700_000_000,
            "ec2_instance_id": instance_id, "ec2_availability_zone": az,
            "ec2_account_id": instance_id.map(|_| ACCOUNT),
        }))
    }

    fn inventory(instances: Vec<Ec2InstanceRef>) -> Ec2Inventory {
        Ec2Inventory {
            instances,
            accounts: vec![ACCOUNT.into()],
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            errors: Vec::new(),
            attempted: 2,
        }
    }

    fn run(nodes: &[ChefNode], inventory: &Ec2Inventory) -> Report<ReconcileRow, ReconcileSummary> {
        reconcile(nodes, inventory, OffsetDateTime::UNIX_EPOCH)
    }

    fn findings(report: &Report<ReconcileRow, ReconcileSummary>) -> Vec<(Finding, String)> {
        report
            .rows
            .iter()
            .map(|r| {
                (
                    r.finding,
                    r.node
                        .clone()
                        .or_else(|| r.instance_id.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn matched_nodes_and_instances_are_not_reported() {
        let report = run(
            &[node("web-1", Some("i-1"), Some("eu-west-1a"))],
            &inventory(vec![instance("i-1", "eu-west-1", "running")]),
        );
        assert!(report.rows.is_empty());
        assert_eq!(report.summary.matched, 1);
        assert_eq!(report.completeness(), Completeness::Complete);
    }

    #[test]
    fn an_instance_without_a_node_is_reported_with_account_and_region() {
        let report = run(
            &[],
            &inventory(vec![
                instance("i-2", "us-east-1", "running"),
                instance("i-3", "eu-west-1", "stopped"),
                instance("i-4", "eu-west-1", "pending"),
            ]),
        );
        assert_eq!(report.summary.instances_without_node, 3);
        let row = &report.rows[0];
        assert_eq!(row.finding, Finding::InstanceWithoutNode);
        assert_eq!(row.account.as_deref(), Some(ACCOUNT));
        assert_eq!(row.region.as_deref(), Some("eu-west-1"));
        assert_eq!(row.instance_id.as_deref(), Some("i-3"));
        assert_eq!(row.instance_name.as_deref(), Some("name-of-i-3"));
        assert_eq!(row.node, None);
    }

    #[test]
    fn terminated_instances_without_nodes_are_not_orphans() {
        let report = run(
            &[],
            &inventory(vec![
                instance("i-5", "eu-west-1", "terminated"),
                instance("i-6", "eu-west-1", "shutting-down"),
            ]),
        );
        assert!(report.rows.is_empty());
        assert_eq!(report.summary.instances_without_node, 0);
    }

    #[test]
    fn a_node_whose_instance_is_missing_or_terminated_is_gone() {
        let report = run(
            &[
                node("missing", Some("i-404"), Some("us-east-1c")),
                node("terminated", Some("i-7"), Some("eu-west-1a")),
            ],
            &inventory(vec![instance("i-7", "eu-west-1", "terminated")]),
        );
        assert_eq!(
            findings(&report),
            vec![
                (Finding::NodeInstanceGone, "terminated".into()),
                (Finding::NodeInstanceGone, "missing".into()),
            ]
        );
        let missing = &report.rows[1];
        assert_eq!(missing.account.as_deref(), Some(ACCOUNT));
        assert_eq!(missing.region.as_deref(), Some("us-east-1"));
        assert_eq!(missing.instance_state, None);
        assert_eq!(missing.environment.as_deref(), Some("prod"));
        assert_eq!(missing.last_run.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(report.rows[0].instance_state.as_deref(), Some("terminated"));
        assert_eq!(report.summary.nodes_instance_gone, 2);
    }

    #[test]
    fn a_node_whose_instance_is_stopped_is_reported() {
        let report = run(
            &[
                node("stopped", Some("i-8"), None),
                node("stopping", Some("i-9"), None),
            ],
            &inventory(vec![
                instance("i-8", "eu-west-1", "stopped"),
                instance("i-9", "eu-west-1", "stopping"),
            ]),
        );
        assert_eq!(report.summary.nodes_instance_stopped, 2);
        assert!(
            report
                .rows
                .iter()
                .all(|r| r.finding == Finding::NodeInstanceStopped
                    && r.region.as_deref() == Some("eu-west-1"))
        );
    }

    #[test]
    fn nodes_off_ec2_are_counted_not_reported() {
        let report = run(&[node("laptop", None, None)], &inventory(Vec::new()));
        assert!(report.rows.is_empty());
        assert_eq!(report.summary.nodes, 1);
        assert_eq!(report.summary.nodes_on_ec2, 0);
    }

    #[test]
    fn nodes_outside_the_inventory_scope_are_not_judged() {
        let mut other_account = node("elsewhere", Some("i-10"), Some("eu-west-1a"));
        other_account.account_id = Some("222222222222".into());
        let report = run(
            &[node("ap", Some("i-11"), Some("ap-south-1a")), other_account],
            &inventory(Vec::new()),
        );
        assert!(report.rows.is_empty());
        assert_eq!(report.summary.nodes_outside_scope, 2);
    }

    #[test]
    fn nodes_in_a_failed_region_are_not_judged_and_the_report_is_partial() {
        let mut inv = inventory(Vec::new());
        inv.errors.push(ReportError {
            account: Some(ACCOUNT.into()),
            region: Some("us-east-1".into()),
            group: None,
            reason: "UnauthorizedOperation".into(),
        });
        let report = run(
            &[
                node("in-failed", Some("i-12"), Some("us-east-1a")),
                node("unknown-region", Some("i-13"), None),
                node("in-good", Some("i-14"), Some("eu-west-1a")),
            ],
            &inv,
        );
        assert_eq!(
            findings(&report),
            vec![(Finding::NodeInstanceGone, "in-good".into())]
        );
        assert_eq!(report.summary.nodes_not_checked, 2);
        assert_eq!(report.completeness(), Completeness::Partial);
        assert_eq!(report.errors.len(), 1);
    }

    #[test]
    fn nodes_sharing_an_instance_are_each_reported() {
        let report = run(
            &[
                node("old-name", Some("i-15"), None),
                node("new-name", Some("I-15 "), None),
            ],
            &inventory(vec![instance("i-15", "eu-west-1", "running")]),
        );
        assert_eq!(
            findings(&report),
            vec![
                (Finding::DuplicateNode, "new-name".into()),
                (Finding::DuplicateNode, "old-name".into()),
            ]
        );
        assert_eq!(report.summary.matched, 2);
        assert_eq!(report.summary.instances_without_node, 0);
    }

    #[test]
    fn a_full_picture_gives_exactly_the_expected_orphans() {
        let nodes = vec![
            node("ok", Some("i-a"), Some("eu-west-1a")),
            node("gone", Some("i-b"), Some("eu-west-1b")),
            node("stopped", Some("i-c"), Some("us-east-1a")),
            node("off-ec2", None, None),
        ];
        let report = run(
            &nodes,
            &inventory(vec![
                instance("i-a", "eu-west-1", "running"),
                instance("i-c", "us-east-1", "stopped"),
                instance("i-d", "us-east-1", "running"),
                instance("i-e", "eu-west-1", "terminated"),
            ]),
        );
        assert_eq!(
            findings(&report),
            vec![
                (Finding::InstanceWithoutNode, "i-d".into()),
                (Finding::NodeInstanceGone, "gone".into()),
                (Finding::NodeInstanceStopped, "stopped".into()),
            ]
        );
        assert_eq!(
            report.summary,
            ReconcileSummary {
                instances: 4,
                nodes: 4,
                nodes_on_ec2: 3,
                matched: 1,
                instances_without_node: 1,
                nodes_instance_gone: 1,
                nodes_instance_stopped: 1,
                ..ReconcileSummary::default()
            }
        );
        assert_eq!(report.scope.regions, vec!["eu-west-1", "us-east-1"]);

        let templates = Templates::new(None).unwrap_or_else(|e| panic!("{e}"));
        for format in [
            ReportFormat::Table,
            ReportFormat::Json,
            ReportFormat::Csv,
            ReportFormat::Markdown,
            ReportFormat::Html,
        ] {
            let text = render_report(&report, format, &templates)
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert!(text.contains("node_instance_stopped"), "{format:?}: {text}");
            assert!(text.contains("i-d"), "{format:?}");
        }
    }
}
