//! Chef nodes: the node inventory (one partial search), one node read whole, node creation,
//! and the merged attribute view (`default` < `normal` < `override` < `automatic`).

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::search::{SearchQuery, search};
use super::{ChefClient, ChefError};
use crate::report::{Figure, Headline, Report, Scope, Tabular, number};

/// What the inventory reads of each node, as partial-search attributes.
const INVENTORY_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("name", &["name"]),
    ("chef_environment", &["chef_environment"]),
    ("platform", &["platform"]),
    ("platform_version", &["platform_version"]),
    ("fqdn", &["fqdn"]),
    ("ipaddress", &["ipaddress"]),
    ("ohai_time", &["ohai_time"]),
    ("ec2_instance_id", &["ec2", "instance_id"]),
    ("ec2_region", &["ec2", "region"]),
    (
        "ec2_availability_zone",
        &["ec2", "placement_availability_zone"],
    ),
    ("ec2_account_id", &["ec2", "account_id"]),
];

/// One node as the inventory sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChefNode {
    /// Node name.
    pub name: String,
    /// Chef environment.
    pub environment: String,
    /// `platform` automatic attribute.
    pub platform: Option<String>,
    /// `platform_version` automatic attribute.
    pub platform_version: Option<String>,
    /// `fqdn` automatic attribute.
    pub fqdn: Option<String>,
    /// `ipaddress` automatic attribute.
    pub ipaddress: Option<String>,
    /// Last Chef run (`ohai_time`), seconds since the epoch.
    pub ohai_time: Option<f64>,
    /// `ec2.instance_id` automatic attribute.
    pub instance_id: Option<String>,
    /// The node's AWS region (`ec2.region`, else derived from the availability zone).
    pub region: Option<String>,
    /// The node's AWS account (`ec2.account_id`).
    pub account_id: Option<String>,
}

impl ChefNode {
    /// Reads a node from partial-search data (or any object with the same keys).
    pub fn from_search_data(data: &Value) -> Self {
        let text = |key: &str| {
            data.get(key).and_then(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let region = text("ec2_region").or_else(|| {
            text("ec2_availability_zone").and_then(|az| {
                az.strip_suffix(|c: char| c.is_ascii_lowercase())
                    .map(str::to_owned)
            })
        });
        Self {
            name: text("name").unwrap_or_default(),
            environment: text("chef_environment").unwrap_or_else(|| "_default".into()),
            platform: text("platform"),
            platform_version: text("platform_version"),
            fqdn: text("fqdn"),
            ipaddress: text("ipaddress"),
            ohai_time: data.get("ohai_time").and_then(Value::as_f64),
            instance_id: text("ec2_instance_id"),
            region,
            account_id: text("ec2_account_id"),
        }
    }

    /// The last Chef run as RFC 3339, when known.
    pub fn last_run(&self) -> Option<String> {
        format_epoch(self.ohai_time?)
    }
}

/// Formats seconds since the epoch as RFC 3339 (UTC, whole seconds).
pub fn format_epoch(seconds: f64) -> Option<String> {
    if !seconds.is_finite() {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "ohai_time is a float of whole seconds; sub-second precision is not shown"
    )]
    let whole = seconds.trunc() as i64;
    OffsetDateTime::from_unix_timestamp(whole)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Quotes a term for a Chef (Lucene) query: special characters are escaped.
pub fn query_term(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    for c in term.chars() {
        if "+-&|!(){}[]^\"~*?:\\/ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every node (of `environment`, when given), sorted by name, read with one paged partial
/// search.
pub async fn list_nodes(
    client: &ChefClient,
    environment: Option<&str>,
) -> Result<Vec<ChefNode>, ChefError> {
    let query = match environment {
        Some(env) => format!("chef_environment:{}", query_term(env)),
        None => "*:*".to_owned(),
    };
    let attributes = INVENTORY_ATTRIBUTES
        .iter()
        .map(|(name, path)| {
            (
                (*name).to_owned(),
                path.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect();
    let result = search(
        client,
        &SearchQuery::new("node", query).with_attributes(attributes),
    )
    .await?;
    let mut nodes: Vec<ChefNode> = result
        .rows
        .iter()
        .map(|row| {
            let mut node = ChefNode::from_search_data(&row.data);
            if node.name.is_empty() {
                node.name.clone_from(&row.name);
            }
            node
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// One node, whole, as the server stores it.
pub async fn get_node(client: &ChefClient, name: &str) -> Result<Value, ChefError> {
    client.get("get_node", &["nodes", name], &[]).await
}

/// Creates a node from its JSON form (`name` is required).
pub async fn create_node(client: &ChefClient, node: &Value) -> Result<(), ChefError> {
    if node.get("name").and_then(Value::as_str).is_none() {
        return Err(ChefError::InvalidInput("a node needs a `name`".into()));
    }
    client.post("create_node", &["nodes"], &[], node).await?;
    Ok(())
}

/// Deletes a node.
pub async fn delete_node(client: &ChefClient, name: &str) -> Result<(), ChefError> {
    client.delete("delete_node", &["nodes", name]).await?;
    Ok(())
}

fn deep_merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_merge(existing, incoming);
            }
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The node's attributes as Chef merges them: `default` < `normal` < `override` <
/// `automatic`, hashes merged key by key.
pub fn merged_attributes(node: &Value) -> Value {
    let mut merged = Map::new();
    for level in ["default", "normal", "override", "automatic"] {
        if let Some(Value::Object(attrs)) = node.get(level) {
            deep_merge(&mut merged, attrs);
        }
    }
    Value::Object(merged)
}

/// The value at a dotted path (`ec2.instance_id`); a path may also name a top-level field
/// of the node (`name`, `chef_environment`, `run_list`).
pub fn node_attribute<'a>(node: &'a Value, merged: &'a Value, path: &str) -> Option<&'a Value> {
    let walk = |root: &'a Value| {
        path.split('.')
            .try_fold(root, |value, segment| match value {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            })
    };
    walk(merged).or_else(|| walk(node))
}

/// One row of the node list.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    /// Node name.
    pub name: String,
    /// Chef environment.
    pub environment: String,
    /// Platform and version.
    pub platform: Option<String>,
    /// Fully qualified domain name.
    pub fqdn: Option<String>,
    /// Primary IP address.
    pub ipaddress: Option<String>,
    /// EC2 instance id, for nodes on EC2.
    pub instance_id: Option<String>,
    /// Last Chef run, RFC 3339.
    pub last_run: Option<String>,
}

impl Tabular for NodeRow {
    fn noun() -> &'static str {
        "nodes"
    }

    fn facets() -> Vec<&'static str> {
        vec!["environment", "platform"]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "name",
            "environment",
            "platform",
            "fqdn",
            "ipaddress",
            "instance_id",
            "last_run",
        ]
    }

    fn cells(&self) -> Vec<String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.name.clone(),
            self.environment.clone(),
            opt(&self.platform),
            opt(&self.fqdn),
            opt(&self.ipaddress),
            opt(&self.instance_id),
            opt(&self.last_run),
        ]
    }
}

/// Totals of a node list.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    /// Nodes listed.
    pub nodes: usize,
    /// Nodes by environment.
    pub by_environment: std::collections::BTreeMap<String, usize>,
    /// Nodes with an `ec2.instance_id`.
    pub on_ec2: usize,
}

/// The node list as a report.
pub fn node_report(
    nodes: &[ChefNode],
    server_url: &str,
    environment: Option<&str>,
) -> Report<NodeRow, NodeSummary> {
    let mut scope = Scope::default();
    scope.filters.insert("server".into(), server_url.to_owned());
    if let Some(env) = environment {
        scope.filters.insert("environment".into(), env.to_owned());
    }
    let mut by_environment = std::collections::BTreeMap::new();
    for node in nodes {
        *by_environment.entry(node.environment.clone()).or_insert(0) += 1;
    }
    Report {
        kind: "chef.nodes".into(),
        title: "Chef nodes".into(),
        scope,
        generated_at: OffsetDateTime::now_utc(),
        rows: nodes
            .iter()
            .map(|n| NodeRow {
                name: n.name.clone(),
                environment: n.environment.clone(),
                platform: n.platform.as_ref().map(|p| match &n.platform_version {
                    Some(v) => format!("{p} {v}"),
                    None => p.clone(),
                }),
                fqdn: n.fqdn.clone(),
                ipaddress: n.ipaddress.clone(),
                instance_id: n.instance_id.clone(),
                last_run: n.last_run(),
            })
            .collect(),
        summary: NodeSummary {
            nodes: nodes.len(),
            by_environment,
            on_ec2: nodes.iter().filter(|n| n.instance_id.is_some()).count(),
        },
        errors: Vec::new(),
        attempted: 1,
    }
}

/// One attribute of a shown node.
#[derive(Debug, Clone, Serialize)]
pub struct AttributeRow {
    /// Dotted path.
    pub attribute: String,
    /// The value (`null` when the node has no such attribute).
    pub value: Value,
}

impl Tabular for AttributeRow {
    fn noun() -> &'static str {
        "nodes"
    }

    fn columns() -> Vec<&'static str> {
        vec!["attribute", "value"]
    }

    fn cells(&self) -> Vec<String> {
        let value = match &self.value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        vec![self.attribute.clone(), value]
    }
}

/// Attributes shown by `nodes show` when none are asked for.
pub const DEFAULT_SHOWN_ATTRIBUTES: &[&str] = &[
    "name",
    "chef_environment",
    "run_list",
    "platform",
    "platform_version",
    "fqdn",
    "ipaddress",
    "ohai_time",
    "ec2.instance_id",
    "ec2.placement_availability_zone",
];

/// A node's attributes (`paths`, or [`DEFAULT_SHOWN_ATTRIBUTES`]) as a report.
pub fn node_attributes_report(
    node: &Value,
    paths: &[String],
    server_url: &str,
) -> Report<AttributeRow, Value> {
    let merged = merged_attributes(node);
    let name = node.get("name").and_then(Value::as_str).unwrap_or_default();
    let paths: Vec<String> = if paths.is_empty() {
        DEFAULT_SHOWN_ATTRIBUTES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        paths.to_vec()
    };
    let mut scope = Scope::default();
    scope.filters.insert("server".into(), server_url.to_owned());
    scope.filters.insert("node".into(), name.to_owned());
    let rows: Vec<AttributeRow> = paths
        .iter()
        .map(|path| AttributeRow {
            attribute: path.clone(),
            value: node_attribute(node, &merged, path)
                .cloned()
                .unwrap_or(Value::Null),
        })
        .collect();
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| r.value.is_null())
        .map(|r| r.attribute.as_str())
        .collect();
    Report {
        kind: "chef.node".into(),
        title: format!("Chef node {name}"),
        scope,
        generated_at: OffsetDateTime::now_utc(),
        summary: serde_json::json!({ "attributes": rows.len(), "missing": missing.join(", ") }),
        rows,
        errors: Vec::new(),
        attempted: 1,
    }
}

impl Headline<NodeRow> for NodeSummary {
    fn figures(&self, _rows: &[NodeRow]) -> Vec<Figure> {
        vec![Figure::new("On EC2", number(self.on_ec2 as f64, 0))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> Value {
        json!({
            "name": "web-1",
            "chef_environment": "prod",
            "run_list": ["role[web]"],
            "default": {"app": {"port": 80, "name": "shop"}, "tier": "default"},
            "normal": {"tier": "normal", "app": {"owner": "team-a"}},
            "override": {"app": {"port": 8080}},
            "automatic": {"ec2": {"instance_id": "i-0abc"}, "tier": "auto",
                          "network": {"ips": ["10.0.0.1", "10.0.0.2"]}}
        })
    }

    #[test]
    fn attributes_merge_by_precedence_and_key() {
        let merged = merged_attributes(&node());
        assert_eq!(merged["tier"], "auto");
        assert_eq!(merged["app"]["port"], 8080);
        assert_eq!(merged["app"]["name"], "shop");
        assert_eq!(merged["app"]["owner"], "team-a");
        assert_eq!(merged["ec2"]["instance_id"], "i-0abc");
    }

    #[test]
    fn attribute_paths_reach_nested_values_arrays_and_node_fields() {
        let node = node();
        let merged = merged_attributes(&node);
        let at = |p| node_attribute(&node, &merged, p).cloned();
        assert_eq!(at("app.port"), Some(json!(8080)));
        assert_eq!(at("network.ips.1"), Some(json!("10.0.0.2")));
        assert_eq!(at("chef_environment"), Some(json!("prod")));
        assert_eq!(at("run_list"), Some(json!(["role[web]"])));
        assert_eq!(at("app.missing"), None);
        assert_eq!(at("app.port.deeper"), None);
    }

    #[test]
    fn a_shown_node_names_its_missing_attributes() {
        let report =
            node_attributes_report(&node(), &["app.port".into(), "nope".into()], "http://chef");
        assert_eq!(report.rows.len(), 2);
        assert_eq!(report.rows[0].cells(), vec!["app.port", "8080"]);
        assert_eq!(report.rows[1].value, Value::Null);
        assert_eq!(report.summary["missing"], "nope");
        assert_eq!(report.title, "Chef node web-1");
    }

    #[test]
    fn search_data_becomes_a_node_with_its_region() {
        let node = ChefNode::from_search_data(&json!({
            "name": "web-1", "chef_environment": "prod", "ohai_time": 1_700_000_000.25,
            "ec2_instance_id": "i-1", "ec2_region": null,
            "ec2_availability_zone": "eu-west-1b", "ec2_account_id": "123456789012",
            "platform": "ubuntu", "fqdn": ""
        }));
        assert_eq!(node.region.as_deref(), Some("eu-west-1"));
        assert_eq!(node.account_id.as_deref(), Some("123456789012"));
        assert_eq!(node.fqdn, None);
        assert_eq!(node.last_run().as_deref(), Some("2023-11-14T22:13:20Z"));
        let bare = ChefNode::from_search_data(&json!({"name": "x"}));
        assert_eq!(bare.environment, "_default");
        assert_eq!(bare.instance_id, None);
    }

    #[test]
    fn query_terms_are_escaped() {
        assert_eq!(query_term("prod-eu"), "prod\\-eu");
        assert_eq!(query_term("a:b c"), "a\\:b\\ c");
        assert_eq!(query_term("plain_1"), "plain_1");
    }

    #[test]
    fn the_node_report_counts_by_environment() {
        let nodes = vec![
            ChefNode::from_search_data(&json!({"name": "a", "chef_environment": "prod",
                "ec2_instance_id": "i-1"})),
            ChefNode::from_search_data(&json!({"name": "b", "chef_environment": "prod"})),
            ChefNode::from_search_data(&json!({"name": "c"})),
        ];
        let report = node_report(&nodes, "http://chef", Some("prod"));
        assert_eq!(report.summary.nodes, 3);
        assert_eq!(report.summary.by_environment["prod"], 2);
        assert_eq!(report.summary.by_environment["_default"], 1);
        assert_eq!(report.summary.on_ec2, 1);
        assert_eq!(report.scope.filters["environment"], "prod");
    }
}
