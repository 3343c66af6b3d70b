//! Building params: [`Valid`] (deserialized and checked, once), the JSON schema of a params
//! type, a query string read as params, and the pieces several actions share — the account
//! and region [`Selection`], `KEY=VALUE` tag filters and dates.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Params;
use crate::domain::{FieldError, ValidationErrors};
use crate::plugins::aws::{AccountSelection, RegionSelection, Targets};

/// Params that were deserialized and checked; the only way an action receives them.
#[derive(Debug, Clone)]
pub struct Valid<P>(P);

impl<P: Params> Valid<P> {
    /// Checks params built in code (from command-line arguments).
    pub fn new(params: P) -> Result<Self, ValidationErrors> {
        params.validate()?;
        Ok(Self(params))
    }

    /// Reads and checks a params document. Unknown fields are refused, and every error names
    /// its field (`tags.env`, `ids[2]`).
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        let Value::Object(object) = value else {
            return Err(one("", "expected a JSON object"));
        };
        let schema = json_schema::<P>();
        let known = property_names(&schema);
        let unknown: Vec<FieldError> = object
            .keys()
            .filter(|k| !known.contains(k.as_str()))
            .map(|k| FieldError::new(k.as_str(), unknown_message(&known)))
            .collect();
        if !unknown.is_empty() {
            return Err(ValidationErrors(unknown));
        }
        let mut object = Value::Object(object);
        integral_floats_as_integers(&mut object);
        let params: P = serde_path_to_error::deserialize(object).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            one(&field, e.into_inner().to_string())
        })?;
        Self::new(params)
    }

    /// The params.
    pub fn get(&self) -> &P {
        &self.0
    }
}

/// Writes numbers like `5.0` as `5`: JSON Schema (and JSON) calls them integers, serde's
/// integer types do not take them.
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn one(field: &str, message: impl Into<String>) -> ValidationErrors {
    ValidationErrors(vec![FieldError::new(field, message)])
}

fn unknown_message(known: &BTreeSet<String>) -> String {
    if known.is_empty() {
        "unknown field; this action takes no params".into()
    } else {
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        format!("unknown field; expected {}", names.join(", "))
    }
}

/// The JSON schema of params type `P` as the server enforces it: [`json_schema`] with the
/// rules the Rust type cannot carry added by [`Params::refine_schema`] (limits, patterns of
/// free-text fields, rules between fields).
pub fn params_schema<P: Params>() -> Value {
    let mut schema = json_schema::<P>();
    P::refine_schema(&mut schema);
    schema
}

/// A regular expression matching text without NUL characters, which no text column stores.
pub const NO_NUL: &str = "^[^\\u0000]*$";

/// A regular expression matching a service key: a UUID or a service name.
pub const SERVICE_KEY: &str = "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$";

/// Schema edits for [`Params::refine_schema`].
pub mod refine {
    use serde_json::{Map, Value, json};

    /// The schema of property `name`, when there is one.
    pub fn property<'a>(schema: &'a mut Value, name: &str) -> Option<&'a mut Map<String, Value>> {
        schema.get_mut("properties")?.get_mut(name)?.as_object_mut()
    }

    /// Sets `key` to `value` in property `name`'s schema.
    pub fn set(schema: &mut Value, name: &str, key: &str, value: Value) {
        if let Some(property) = property(schema, name) {
            property.insert(key.to_owned(), value);
        }
    }

    /// Sets `key` to `value` in the schema of the items of array property `name`.
    pub fn set_items(schema: &mut Value, name: &str, key: &str, value: Value) {
        if let Some(items) = property(schema, name)
            .and_then(|p| p.get_mut("items"))
            .and_then(Value::as_object_mut)
        {
            items.insert(key.to_owned(), value);
        }
    }

    /// Adds a rule every document must also satisfy (`allOf`).
    pub fn add_rule(schema: &mut Value, rule: Value) {
        if let Some(object) = schema.as_object_mut() {
            let rules = object.entry("allOf").or_insert_with(|| json!([]));
            if let Value::Array(rules) = rules {
                rules.push(rule);
            }
        }
    }

    /// `flag: true` and a non-empty `list` exclude each other.
    pub fn exclusive(schema: &mut Value, flag: &str, list: &str) {
        add_rule(
            schema,
            json!({
                "if": {"properties": {flag: {"const": true}}, "required": [flag]},
                "then": {"properties": {list: {"maxItems": 0}}}
            }),
        );
    }
}

/// The JSON schema (draft 2020-12) of a params type: one object with every property (those
/// of flattened parts included), no others allowed, and the types it refers to under
/// `$defs`.
pub fn json_schema<P: utoipa::ToSchema>() -> Value {
    let mut dependencies = Vec::new();
    P::schemas(&mut dependencies);
    let defs: Map<String, Value> = dependencies
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    let mut generated = serde_json::to_value(P::schema()).unwrap_or_default();
    rewrite_refs(&mut generated);
    let mut defs = Value::Object(defs);
    rewrite_refs(&mut defs);
    let mut found = Vec::new();
    parts(&generated, &defs, &mut found);
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in found {
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            properties.extend(props.clone());
        }
        if let Some(names) = part.get("required").and_then(Value::as_array) {
            required.extend(names.iter().cloned());
        }
    }
    let mut schema = Map::new();
    schema.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    schema.insert("type".into(), "object".into());
    if let Some(description) = generated.get("description") {
        schema.insert("description".into(), description.clone());
    }
    let text = Value::Object(properties.clone()).to_string();
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), Value::Bool(false));
    if let Value::Object(defs) = defs {
        let used: Map<String, Value> = defs
            .into_iter()
            .filter(|(name, _)| text.contains(&format!("\"#/$defs/{name}\"")))
            .collect();
        if !used.is_empty() {
            schema.insert("$defs".into(), Value::Object(used));
        }
    }
    Value::Object(schema)
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref")
                && let Some(name) = target.strip_prefix("#/components/schemas/")
            {
                *target = format!("#/$defs/{name}");
            }
            object.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The object schemas `schema` is made of: itself, the members of its `allOf` (and of a
/// one-member `oneOf`, as a flattened field is described), and what their `$ref`s point to
/// in `defs`.
fn parts<'a>(schema: &'a Value, defs: &'a Value, out: &mut Vec<&'a Value>) {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(found) = target
            .strip_prefix("#/$defs/")
            .and_then(|name| defs.get(name))
        {
            parts(found, defs, out);
        }
        return;
    }
    out.push(schema);
    for combinator in ["allOf", "oneOf"] {
        match schema.get(combinator).and_then(Value::as_array) {
            Some(members) if combinator == "allOf" || members.len() == 1 => {
                for member in members {
                    parts(member, defs, out);
                }
            }
            _ => {}
        }
    }
}

/// Every property of a params schema (from [`json_schema`]), with its schema.
fn properties(schema: &Value) -> BTreeMap<String, &Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    properties(schema).into_keys().collect()
}

/// The JSON type a property holds (the non-null one of `["string", "null"]`).
fn kind(property: &Value) -> &str {
    match property.get("type") {
        Some(Value::String(kind)) => kind,
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

/// Reads a query string as a params document of `P`, by the type of each property: lists
/// take repeated and comma-separated values, maps take repeated `KEY=VALUE`, flags take
/// `true` or `false`, numbers are parsed. Errors name the query parameter.
pub fn from_query<P: Params>(pairs: &[(String, String)]) -> Result<Value, ValidationErrors> {
    let schema = json_schema::<P>();
    let properties = properties(&schema);
    let mut object = Map::new();
    let mut errors = Vec::new();
    for (key, value) in pairs {
        if value.is_empty() {
            errors.push(FieldError::new(
                key.as_str(),
                "empty value; leave the parameter out",
            ));
            continue;
        }
        let name = P::QUERY_ALIASES
            .iter()
            .find(|(alias, _)| alias == key)
            .map_or(key.as_str(), |(_, name)| name);
        let Some(property) = properties.get(name) else {
            let mut known: BTreeSet<String> = properties.keys().cloned().collect();
            known.extend(
                P::QUERY_ALIASES
                    .iter()
                    .map(|(alias, _)| (*alias).to_owned()),
            );
            errors.push(FieldError::new(key.as_str(), unknown_message(&known)));
            continue;
        };
        let entry = object.entry(name.to_owned());
        match kind(property) {
            "array" => {
                let list = entry.or_insert_with(|| Value::Array(Vec::new()));
                if value.split(',').any(str::is_empty) {
                    errors.push(FieldError::new(
                        key.as_str(),
                        "an empty item; separate items with single commas",
                    ));
                    continue;
                }
                if let Value::Array(list) = list {
                    list.extend(value.split(',').map(|v| Value::String(v.to_owned())));
                }
            }
            "object" => {
                let Some((k, v)) = value.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                    errors.push(FieldError::new(key.as_str(), "expected KEY=VALUE"));
                    continue;
                };
                if let Value::Object(map) = entry.or_insert_with(|| Value::Object(Map::new())) {
                    map.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            }
            "boolean" => match flag(value) {
                Some(on) => {
                    entry.or_insert(Value::Bool(on));
                }
                None => errors.push(FieldError::new(key.as_str(), "expected true or false")),
            },
            "integer" => match value.parse::<i64>() {
                Ok(number) => {
                    entry.or_insert(Value::from(number));
                }
                Err(_) => errors.push(FieldError::new(key.as_str(), "expected a whole number")),
            },
            _ => match entry {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(Value::String(value.clone()));
                }
                serde_json::map::Entry::Occupied(_) => {
                    errors.push(FieldError::new(key.as_str(), "given more than once"));
                }
            },
        }
    }
    if errors.is_empty() {
        Ok(Value::Object(object))
    } else {
        Err(ValidationErrors(errors))
    }
}

/// A query flag: `true` or `false`, as the OpenAPI document says a boolean is written.
pub fn flag(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Which accounts and regions an AWS action covers. Empty lists mean the current account
/// and the home region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Selection {
    /// Regions (default: the home region).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline, value_type = Vec<String>, pattern = "^[a-z0-9-]{1,32}$")]
    pub regions: Vec<String>,
    /// Every region enabled in each account.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_regions: bool,
    /// Account ids, reached through `aws.assume_role_name` (default: the current account).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(inline, value_type = Vec<String>, pattern = "^[0-9]{12}$")]
    pub accounts: Vec<String>,
    /// Every active account of the organization.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_accounts: bool,
}

impl Selection {
    /// Adds the rejected fields to `errors`.
    pub fn check(&self, errors: &mut Vec<FieldError>) {
        if self.all_regions && !self.regions.is_empty() {
            errors.push(FieldError::new(
                "all_regions",
                "give either all_regions or regions, not both",
            ));
        }
        if self.all_accounts && !self.accounts.is_empty() {
            errors.push(FieldError::new(
                "all_accounts",
                "give either all_accounts or accounts, not both",
            ));
        }
        for (i, region) in self.regions.iter().enumerate() {
            let ok = (1..=32).contains(&region.len())
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                errors.push(FieldError::new(
                    format!("regions[{i}]"),
                    format!("{region:?} is not a region name such as eu-west-1"),
                ));
            }
        }
        for (i, account) in self.accounts.iter().enumerate() {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(FieldError::new(
                    format!("accounts[{i}]"),
                    format!("{account:?} is not an account id (12 digits)"),
                ));
            }
        }
        let limits = crate::config::limits::current();
        check_count(
            "regions",
            "regions",
            "limits.regions",
            self.regions.len(),
            limits.regions,
            errors,
        );
        check_count(
            "accounts",
            "accounts",
            "limits.accounts",
            self.accounts.len(),
            limits.accounts,
            errors,
        );
    }

    /// Adds the selection's rules to the schema of params that flatten it: the caps, and that
    /// `all_regions` (`all_accounts`) and a list of regions (accounts) exclude each other.
    pub fn refine_schema(schema: &mut Value) {
        let limits = crate::config::limits::current();
        refine::set(schema, "regions", "maxItems", Value::from(limits.regions));
        refine::set(schema, "accounts", "maxItems", Value::from(limits.accounts));
        refine::exclusive(schema, "all_regions", "regions");
        refine::exclusive(schema, "all_accounts", "accounts");
    }

    /// The accounts and regions to read.
    pub fn targets(&self) -> Targets {
        let accounts = if self.all_accounts {
            AccountSelection::All
        } else if self.accounts.is_empty() {
            AccountSelection::Current
        } else {
            AccountSelection::Listed(distinct(&self.accounts))
        };
        let regions = if self.all_regions {
            RegionSelection::AllEnabled
        } else if self.regions.is_empty() {
            RegionSelection::Home
        } else {
            RegionSelection::Listed(distinct(&self.regions))
        };
        Targets { accounts, regions }
    }
}

/// `items` without repeats, in their first order.
pub fn distinct(items: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .filter(|item| seen.insert(item.as_str()))
        .cloned()
        .collect()
}

/// Adds an error on `field` when `count` `what` exceed the limit `most` (setting `key`).
pub fn check_count(
    field: &str,
    what: &str,
    key: &str,
    count: usize,
    most: usize,
    errors: &mut Vec<FieldError>,
) {
    if let Err(message) = crate::config::Limits::check_count(what, key, count, most) {
        errors.push(FieldError::new(field, message));
    }
}

/// Adds an error on `field` when there are more tag filters than `limits.tag_filters`.
pub fn check_tag_filters(field: &str, count: usize, errors: &mut Vec<FieldError>) {
    let most = crate::config::limits::current().tag_filters;
    check_count(
        field,
        "tag filters",
        "limits.tag_filters",
        count,
        most,
        errors,
    );
}

/// Adds an error on `field` when `service` is not a service key (a UUID or a name).
pub fn check_service(field: &str, service: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(service) = service
        && let Err(message) = crate::domain::service::ServiceKey::parse(service)
    {
        errors.push(FieldError::new(field, message));
    }
}

/// The schema of a list of `KEY=VALUE` tag filters, property `name`: the form and the cap.
pub fn refine_tag_filters(schema: &mut Value, name: &str) {
    let most = crate::config::limits::current().tag_filters;
    refine::set(schema, name, "maxItems", Value::from(most));
    refine::set_items(schema, name, "pattern", Value::from("^[^=]+=[\\s\\S]*$"));
}

/// A `KEY=VALUE` tag, as `--tag` and the `tag` query parameter take it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagFilter {
    /// The tag key.
    pub key: String,
    /// The value it must have.
    pub value: String,
}

impl TryFrom<String> for TagFilter {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<TagFilter> for String {
    fn from(tag: TagFilter) -> Self {
        format!("{}={}", tag.key, tag.value)
    }
}

impl TagFilter {
    /// Parses `KEY=VALUE` (the value may be empty, the key may not).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(Self {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            _ => Err(format!("expected KEY=VALUE, got {text:?}")),
        }
    }

    /// As a pair.
    pub fn pair(&self) -> (String, String) {
        (self.key.clone(), self.value.clone())
    }
}

time::serde::format_description!(pub ymd, Date, "[year]-[month]-[day]");

/// Parses a `YYYY-MM-DD` date (for command-line arguments).
pub fn parse_date(text: &str) -> Result<time::Date, String> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| format!("expected YYYY-MM-DD: {e}"))
}

/// A regular expression for `YYYY-MM-DD` dates in the years of `limits.earliest_date` to
/// `limits.latest_date` (the days of those years outside the range are refused too, by the
/// server; the expression cannot say so).
pub fn date_pattern() -> String {
    let limits = crate::config::limits::current();
    let years = year_range(limits.earliest_date.year(), limits.latest_date.year());
    format!("^({years})-[0-9]{{2}}-[0-9]{{2}}$")
}

/// A regular expression for the four-digit years `first..=last`: whole centuries and decades
/// as digit classes, the rest one by one (`20[0-9]{2}|2100` for 2000 to 2100).
fn year_range(first: i32, last: i32) -> String {
    let mut parts = Vec::new();
    let mut year = first;
    while year <= last {
        if year % 100 == 0 && year + 99 <= last {
            parts.push(format!("{:02}[0-9]{{2}}", year / 100));
            year += 100;
        } else if year % 10 == 0 && year + 9 <= last {
            parts.push(format!("{:03}[0-9]", year / 10));
            year += 10;
        } else {
            parts.push(format!("{year:04}"));
            year += 1;
        }
    }
    parts.join("|")
}

/// Rejects a date outside `limits.earliest_date` ..= `limits.latest_date`.
pub fn check_date(field: &str, date: Option<time::Date>, errors: &mut Vec<FieldError>) {
    if let Some(date) = date
        && let Err(message) = crate::config::limits::current().check_date(date)
    {
        errors.push(FieldError::new(field, message));
    }
}

/// The errors as a result.
pub fn result(errors: Vec<FieldError>) -> Result<(), ValidationErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    struct Example {
        #[serde(flatten)]
        selection: Selection,
        #[serde(default)]
        states: Vec<String>,
        #[serde(default)]
        tags: BTreeMap<String, String>,
        #[serde(default)]
        forecast: bool,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        service: Option<String>,
    }

    impl Params for Example {
        const QUERY_ALIASES: &'static [(&'static str, &'static str)] = &[("state", "states")];

        fn validate(&self) -> Result<(), ValidationErrors> {
            let mut errors = Vec::new();
            self.selection.check(&mut errors);
            result(errors)
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn year_ranges_are_compact_regular_expressions() {
        assert_eq!(year_range(2000, 2100), "20[0-9]{2}|2100");
        assert_eq!(year_range(1998, 2011), "1998|1999|200[0-9]|2010|2011");
    }

    #[test]
    fn integral_floats_are_integers() {
        let mut value = serde_json::json!({"a": 5.0, "b": [1.5, 2.0], "c": 3});
        integral_floats_as_integers(&mut value);
        assert_eq!(value, serde_json::json!({"a": 5, "b": [1.5, 2], "c": 3}));
    }

    #[test]
    fn repeated_regions_and_accounts_are_read_once() {
        let selection = Selection {
            regions: vec!["eu-west-1".into(); 50],
            accounts: vec!["123456789012".into(); 1000],
            ..Selection::default()
        };
        let mut errors = Vec::new();
        selection.check(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let targets = selection.targets();
        assert_eq!(
            targets.regions,
            RegionSelection::Listed(vec!["eu-west-1".into()])
        );
        let selection = Selection {
            regions: (0..51).map(|i| format!("r-{i}")).collect(),
            ..Selection::default()
        };
        let mut errors = Vec::new();
        selection.check(&mut errors);
        assert!(
            errors.iter().any(|e| e.message.contains("limits.regions")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_schema_lists_flattened_properties() {
        let names = property_names(&json_schema::<Example>());
        for name in [
            "regions",
            "all_regions",
            "accounts",
            "states",
            "tags",
            "limit",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn a_query_becomes_params_by_property_type() -> Result<(), ValidationErrors> {
        let value = from_query::<Example>(&pairs(&[
            ("state", "running,stopped"),
            ("states", "pending"),
            ("regions", "eu-west-1"),
            ("tags", "env=dev"),
            ("tags", "team=a"),
            ("forecast", "true"),
            ("limit", "7"),
            ("service", "billing"),
        ]))?;
        let params = Valid::<Example>::from_json(value)?;
        let params = params.get();
        assert_eq!(params.states, ["running", "stopped", "pending"]);
        assert_eq!(params.selection.regions, ["eu-west-1"]);
        assert_eq!(params.tags.get("team").map(String::as_str), Some("a"));
        assert!(params.forecast);
        assert_eq!(params.limit, Some(7));
        Ok(())
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let fields = |list: &[(&str, &str)]| -> Vec<String> {
            match from_query::<Example>(&pairs(list)) {
                Ok(value) => panic!("accepted: {value}"),
                Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
            }
        };
        assert_eq!(fields(&[("bogus", "1")]), ["bogus"]);
        assert_eq!(fields(&[("forecast", "maybe")]), ["forecast"]);
        assert_eq!(fields(&[("limit", "x")]), ["limit"]);
        assert_eq!(fields(&[("tags", "novalue")]), ["tags"]);
        assert_eq!(fields(&[("service", "a"), ("service", "b")]), ["service"]);
    }

    #[test]
    fn documents_are_checked_field_by_field() {
        let errors = |value: Value| -> Vec<String> {
            match Valid::<Example>::from_json(value) {
                Ok(params) => panic!("accepted: {:?}", params.get()),
                Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
            }
        };
        assert_eq!(errors(serde_json::json!({"nope": 1})), ["nope"]);
        assert_eq!(
            errors(serde_json::json!({"tags": {"env": 1}})),
            ["tags.env"]
        );
        assert_eq!(
            errors(serde_json::json!({"accounts": ["12"]})),
            ["accounts[0]"]
        );
        assert_eq!(
            errors(serde_json::json!({"regions": ["eu-west-1"], "all_regions": true})),
            ["all_regions"]
        );
        assert_eq!(errors(serde_json::json!([])), [""]);
    }

    #[test]
    fn tag_filters_need_a_key() {
        assert_eq!(
            TagFilter::parse("a=b=c").map(|t| t.pair()),
            Ok(("a".into(), "b=c".into()))
        );
        assert!(TagFilter::parse("=b").is_err());
        assert!(TagFilter::parse("ab").is_err());
    }
}
