//! Chef search, full and partial, paged through every row with `start` and `rows` (never
//! stopping at the server's first page).

use serde::Serialize;
use serde_json::{Map, Value};

use super::client::Method;
use super::{ChefClient, ChefError};
use crate::report::Tabular;

/// Rows asked for per page; Chef servers answer at most 1,000 by default.
pub const PAGE_ROWS: usize = 1000;

/// Most pages one search reads: a bound on a server that never runs out of rows.
const MAX_PAGES: usize = 10_000;

/// One search: an index, a query and, for a partial search, the attributes to return.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// `node`, `role`, `client`, `environment` or a data bag name.
    pub index: String,
    /// A Solr-style query such as `*:*` or `role:web AND chef_environment:prod`.
    pub query: String,
    /// Attributes to return (a partial search), as `(name, path)`; empty for whole objects.
    pub attributes: Vec<(String, Vec<String>)>,
    /// Rows asked for per request.
    pub page_rows: usize,
}

impl SearchQuery {
    /// A search of `index` for `query`, whole objects, the default page size.
    pub fn new(index: impl Into<String>, query: impl Into<String>) -> Self {
        Self {
            index: index.into(),
            query: query.into(),
            attributes: Vec::new(),
            page_rows: PAGE_ROWS,
        }
    }

    /// The same search returning only these attributes.
    pub fn with_attributes(mut self, attributes: Vec<(String, Vec<String>)>) -> Self {
        self.attributes = attributes;
        self
    }
}

/// Parses `name=path.to.attribute` (or a bare `path.to.attribute`, named after itself) into
/// a partial-search attribute.
pub fn parse_attribute(spec: &str) -> Result<(String, Vec<String>), String> {
    let (name, path) = match spec.split_once('=') {
        Some((name, path)) => (name.trim(), path.trim()),
        None => (spec.trim(), spec.trim()),
    };
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if name.is_empty() || segments.iter().any(String::is_empty) {
        return Err(format!(
            "expected NAME=PATH such as ip=network.interfaces.eth0 or a dotted PATH, got {spec:?}"
        ));
    }
    Ok((name.to_owned(), segments))
}

/// Every row of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// Rows matching: the server's `total`, or the rows read when that is more.
    pub total: u64,
    /// The rows: whole objects, or for a partial search the requested attributes.
    pub rows: Vec<SearchRow>,
    /// How many requests it took.
    pub pages: usize,
}

/// One search hit.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRow {
    /// Object name (or data bag item id).
    pub name: String,
    /// The object, or the requested attributes.
    pub data: Value,
}

impl Tabular for SearchRow {
    fn noun() -> &'static str {
        "results"
    }

    fn columns() -> Vec<&'static str> {
        vec!["name", "data"]
    }

    fn cells(&self) -> Vec<String> {
        vec![self.name.clone(), self.data.to_string()]
    }
}

fn check_index(index: &str) -> Result<(), ChefError> {
    let valid = !index.is_empty()
        && index
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ChefError::InvalidInput(format!(
            "{index:?} is not a search index; expected node, role, client, environment or a \
             data bag name"
        )))
    }
}

/// Runs `query`, requesting page after page until every row the server counts is read.
pub async fn search(client: &ChefClient, query: &SearchQuery) -> Result<SearchResult, ChefError> {
    check_index(&query.index)?;
    let page_rows = query.page_rows.max(1);
    let body = (!query.attributes.is_empty()).then(|| {
        Value::Object(
            query
                .attributes
                .iter()
                .map(|(name, path)| (name.clone(), Value::from(path.clone())))
                .collect::<Map<_, _>>(),
        )
    });
    let partial = body.is_some();
    let mut sort: Option<&str> = None;
    let mut rows = Vec::new();
    let mut pages = 0;
    let mut total = 0;
    loop {
        let mut params = vec![
            ("q", query.query.clone()),
            ("start", rows.len().to_string()),
            ("rows", page_rows.to_string()),
        ];
        if let Some(sort) = sort {
            params.push(("sort", sort.to_owned()));
        }
        let segments = ["search", query.index.as_str()];
        let (headers, page) = match &body {
            Some(body) => {
                client
                    .request(
                        "partial_search",
                        Method::POST,
                        &segments,
                        &params,
                        Some(body),
                    )
                    .await?
            }
            None => {
                client
                    .request("search", Method::GET, &segments, &params, None)
                    .await?
            }
        };
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ChefError::InvalidResponse {
                operation: "search",
                reason: format!("more than {MAX_PAGES} pages of results; stopped"),
            });
        }
        let page_total =
            page.get("total")
                .and_then(Value::as_u64)
                .ok_or(ChefError::InvalidResponse {
                    operation: "search",
                    reason: "no `total` in the search result".into(),
                })?;
        let Some(Value::Array(found_rows)) = page.get("rows") else {
            return Err(ChefError::InvalidResponse {
                operation: "search",
                reason: "no `rows` array in the search result".into(),
            });
        };
        let found = found_rows.len();
        // goiardi orders partial-search rows by a key they do not have, so its pages
        // overlap unless they are sorted by `url`; other servers sort by object id.
        if partial
            && sort.is_none()
            && rows.is_empty()
            && found >= page_rows
            && is_goiardi(&headers)
        {
            sort = Some("url asc");
            total = 0;
            continue;
        }
        total = total.max(page_total);
        rows.extend(found_rows.iter().map(|row| search_row(row, partial)));
        total = total.max(rows.len() as u64);
        // A full page may be followed by more even when `total` says otherwise (goiardi
        // counts only the rows of the page); a short page ends the search once `total`
        // is reached; an empty page always does.
        if found == 0 || (found < page_rows && rows.len() as u64 >= total) {
            break;
        }
    }
    Ok(SearchResult { total, rows, pages })
}

fn is_goiardi(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("X-Goiardi")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

fn search_row(row: &Value, partial: bool) -> SearchRow {
    if partial {
        let data = row.get("data").cloned().unwrap_or(Value::Null);
        let name = row
            .get("url")
            .and_then(Value::as_str)
            .and_then(|url| url.trim_end_matches('/').rsplit('/').next())
            .map(str::to_owned)
            .or_else(|| data.get("name").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        SearchRow { name, data }
    } else {
        let name = row
            .get("raw_data")
            .and_then(|raw| raw.get("id"))
            .and_then(Value::as_str)
            .or_else(|| {
                ["name", "id"]
                    .iter()
                    .find_map(|key| row.get(*key).and_then(Value::as_str))
            })
            .unwrap_or_default()
            .to_owned();
        SearchRow {
            name,
            data: row.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_parse_with_or_without_a_name() {
        assert_eq!(
            parse_attribute("ip=network.interfaces.eth0"),
            Ok((
                "ip".into(),
                vec!["network".into(), "interfaces".into(), "eth0".into()]
            ))
        );
        assert_eq!(
            parse_attribute("ec2.instance_id"),
            Ok((
                "ec2.instance_id".into(),
                vec!["ec2".into(), "instance_id".into()]
            ))
        );
        assert!(parse_attribute("x=").is_err());
        assert!(parse_attribute("=a").is_err());
        assert!(parse_attribute("a..b").is_err());
    }

    #[test]
    fn rows_are_named_from_the_url_or_the_object() {
        let partial = search_row(
            &json!({"url": "http://chef/nodes/web-1", "data": {"ip": "10.0.0.1"}}),
            true,
        );
        assert_eq!(partial.name, "web-1");
        assert_eq!(partial.data, json!({"ip": "10.0.0.1"}));
        assert_eq!(search_row(&json!({"name": "db-1"}), false).name, "db-1");
        let item = json!({"name": "data_bag_item_users_alice", "raw_data": {"id": "alice"}});
        assert_eq!(search_row(&item, false).name, "alice");
    }

    #[test]
    fn index_names_cannot_escape_the_search_path() {
        assert!(check_index("node").is_ok());
        assert!(check_index("my_bag-2").is_ok());
        assert!(check_index("../nodes").is_err());
        assert!(check_index("..").is_err());
        assert!(check_index("").is_err());
    }
}
