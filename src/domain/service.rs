//! A registered service: who owns it, and the cost-allocation tags that mark its resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{FieldError, ValidationErrors};

/// A service name: a lowercase slug of 1–63 characters (`[a-z0-9-]`, starting with a letter
/// or digit and not ending with `-`), usable in URLs, DNS labels and tag values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

impl ServiceName {
    /// Parses a name, explaining what is wrong with a bad one.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 63 {
            return Err(format!("must be 1 to 63 characters, got {}", s.len()));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only lowercase letters, digits and '-'".into());
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err("must not start or end with '-'".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a service is looked up: by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKey {
    /// Its UUID.
    Id(Uuid),
    /// Its unique name.
    Name(ServiceName),
}

impl ServiceKey {
    /// A UUID is taken as an id, anything else as a name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match Uuid::parse_str(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => ServiceName::parse(s).map(Self::Name),
        }
    }
}

/// Everything about a service that a client writes (what POST and PUT take).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpec {
    /// Unique name.
    pub name: ServiceName,
    /// Human-friendly name.
    pub display_name: Option<String>,
    /// What the service does.
    pub description: String,
    /// Owning team.
    pub owner: String,
    /// Cost-allocation tags that mark the service's cloud resources.
    pub tags: BTreeMap<String, String>,
    /// Named links (repo, runbook, dashboard, …), each an http(s) URL.
    pub links: BTreeMap<String, String>,
    /// Free-form JSON object.
    pub metadata: Map<String, Value>,
}

/// A stored service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    /// Stable identifier.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Human-friendly name.
    pub display_name: Option<String>,
    /// What the service does.
    pub description: String,
    /// Owning team.
    pub owner: String,
    /// Cost-allocation tags.
    pub tags: BTreeMap<String, String>,
    /// Named links.
    pub links: BTreeMap<String, String>,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Revision, bumped by every write; the basis of the ETag.
    #[serde(skip)]
    #[schema(ignore)]
    pub revision: i64,
}

impl Service {
    /// The strong entity tag of this revision.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.revision)
    }

    /// The writable part, as a JSON document (the base a merge patch applies to).
    pub fn spec_json(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tags,
            "links": self.links,
            "metadata": self.metadata,
        })
    }
}

const FIELDS: &[&str] = &[
    "name",
    "display_name",
    "description",
    "owner",
    "tags",
    "links",
    "metadata",
];
const READ_ONLY_FIELDS: &[&str] = &["id", "created_at", "updated_at"];
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;
const MAX_TAGS: usize = 50;

impl ServiceSpec {
    /// Parses a JSON document into a spec, collecting every problem rather than the first.
    /// Read-only fields (`id`, `created_at`, `updated_at`) are ignored so a fetched document
    /// can be sent back as it is.
    pub fn from_json(doc: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        let Some(obj) = doc.as_object() else {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "expected a JSON object",
            )]));
        };
        for key in obj.keys() {
            if !FIELDS.contains(&key.as_str()) && !READ_ONLY_FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(key, "unknown field"));
            }
        }
        for field in [
            "name",
            "display_name",
            "description",
            "owner",
            "tags",
            "links",
        ] {
            if obj.get(field).is_some_and(contains_nul) {
                errors.push(FieldError::new(
                    field,
                    "must not contain NUL (\\u0000) characters",
                ));
            }
        }

        let name = match obj.get("name") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("name", "is required"));
                None
            }
            Some(Value::String(s)) => ServiceName::parse(s)
                .map_err(|m| errors.push(FieldError::new("name", m)))
                .ok(),
            Some(_) => {
                errors.push(FieldError::new("name", "expected a string"));
                None
            }
        };
        let owner = match obj.get("owner") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("owner", "is required"));
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.push(FieldError::new("owner", "must not be empty"));
                None
            }
            Some(Value::String(s)) if s.chars().count() > 128 => {
                errors.push(FieldError::new("owner", "must be at most 128 characters"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(FieldError::new("owner", "expected a string"));
                None
            }
        };
        let display_name = match obj.get("display_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > 256 => {
                errors.push(FieldError::new(
                    "display_name",
                    "must be at most 256 characters",
                ));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(FieldError::new("display_name", "expected a string or null"));
                None
            }
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if s.chars().count() > 4096 => {
                errors.push(FieldError::new(
                    "description",
                    "must be at most 4096 characters",
                ));
                String::new()
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                errors.push(FieldError::new("description", "expected a string"));
                String::new()
            }
        };
        let tags = string_map(obj.get("tags"), "tags", &mut errors, |key, value| {
            if key.is_empty() || key.chars().count() > MAX_TAG_KEY {
                Some(format!("tag keys must be 1 to {MAX_TAG_KEY} characters"))
            } else if key.starts_with("aws:") {
                Some("the aws: prefix is reserved by AWS".into())
            } else if value.chars().count() > MAX_TAG_VALUE {
                Some(format!(
                    "tag values must be at most {MAX_TAG_VALUE} characters"
                ))
            } else {
                None
            }
        });
        if tags.len() > MAX_TAGS {
            errors.push(FieldError::new(
                "tags",
                format!("at most {MAX_TAGS} tags, got {}", tags.len()),
            ));
        }
        let links = string_map(obj.get("links"), "links", &mut errors, |key, value| {
            if key.is_empty()
                || key.len() > 32
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Some("link names must be 1 to 32 of [a-z0-9_-]".into());
            }
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => None,
                Ok(_) => Some("expected an http or https URL".into()),
                Err(e) => Some(format!("not a valid URL: {e}")),
            }
        });
        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(value @ Value::Object(_)) if contains_nul(value) => {
                errors.push(FieldError::new(
                    "metadata",
                    "must not contain NUL (\\u0000) characters",
                ));
                Map::new()
            }
            Some(value @ Value::Object(m)) => {
                let limits = crate::config::limits::current();
                let depth = crate::config::limits::json_depth(value);
                let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
                if depth > limits.metadata_depth {
                    errors.push(FieldError::new(
                        "metadata",
                        format!(
                            "nested {depth} levels deep; at most {} (limits.metadata_depth)",
                            limits.metadata_depth
                        ),
                    ));
                    Map::new()
                } else if size > limits.metadata_bytes {
                    errors.push(FieldError::new(
                        "metadata",
                        format!(
                            "{size} bytes as JSON; at most {} (limits.metadata_bytes)",
                            limits.metadata_bytes
                        ),
                    ));
                    Map::new()
                } else {
                    m.clone()
                }
            }
            Some(_) => {
                errors.push(FieldError::new("metadata", "expected a JSON object"));
                Map::new()
            }
        };

        match (name, owner) {
            (Some(name), Some(owner)) if errors.is_empty() => Ok(Self {
                name,
                display_name,
                description,
                owner,
                tags,
                links,
                metadata,
            }),
            _ => Err(ValidationErrors(errors)),
        }
    }
}

impl ServiceSpec {
    /// Applies a JSON Merge Patch (RFC 7396) to `current`'s writable fields and parses the
    /// result. Read-only fields in the patch are ignored; unknown ones are rejected.
    pub fn merge_patch(current: &Service, patch: &Value) -> Result<Self, ValidationErrors> {
        if !patch.is_object() {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "a merge patch must be a JSON object",
            )]));
        }
        let mut doc = current.spec_json();
        json_patch::merge(&mut doc, patch);
        Self::from_json(&doc)
    }
}

/// Whether any string (or object key) in `value` contains a NUL character, which text
/// columns cannot store.
pub fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

fn string_map(
    value: Option<&Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
    check: impl Fn(&str, &str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let path = format!("{field}.{key}");
                match value {
                    Value::String(s) => match check(key, s) {
                        Some(message) => errors.push(FieldError::new(path, message)),
                        None => {
                            out.insert(key.clone(), s.clone());
                        }
                    },
                    _ => errors.push(FieldError::new(path, "expected a string")),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            field,
            "expected an object of string values",
        )),
    }
    out
}

/// Filters and paging for listing services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFilter {
    /// Only services of this owner.
    pub owner: Option<String>,
    /// Only services carrying every one of these tags.
    pub tags: Vec<(String, String)>,
    /// Only services whose name starts with this.
    pub name_prefix: Option<String>,
}

impl ServiceFilter {
    /// Refuses more tag filters than `limits.tag_filters`, naming the limit.
    pub fn check(&self) -> Result<(), FieldError> {
        let most = crate::config::limits::current().tag_filters;
        crate::config::Limits::check_count(
            "tag filters",
            "limits.tag_filters",
            self.tags.len(),
            most,
        )
        .map_err(|message| FieldError::new("tag", message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_lowercase_slugs() {
        assert!(ServiceName::parse("billing-api").is_ok());
        assert!(ServiceName::parse("a").is_ok());
        assert!(ServiceName::parse(&"a".repeat(63)).is_ok());
        assert!(ServiceName::parse(&"a".repeat(64)).is_err());
        assert!(ServiceName::parse("").is_err());
        assert!(ServiceName::parse("Billing").is_err());
        assert!(ServiceName::parse("-billing").is_err());
        assert!(ServiceName::parse("billing-").is_err());
        assert!(ServiceName::parse("bill ing").is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = ServiceSpec::from_json(&json!({
            "name": "Bad Name",
            "tags": {"team": 3},
            "links": {"repo": "ftp://x"},
            "colour": "red"
        }))
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["colour", "name", "owner", "tags.team", "links.repo"]
        );
    }

    #[test]
    fn a_full_document_parses() {
        let spec = ServiceSpec::from_json(&json!({
            "name": "billing",
            "owner": "payments",
            "tags": {"service": "billing"},
            "links": {"repo": "https://git.example/billing"},
            "metadata": {"tier": 1},
            "id": "ignored"
        }));
        assert!(spec.is_ok(), "{spec:?}");
    }
}
