//! Makes the generated OpenAPI document say exactly what the server accepts, so a client
//! generated from it, or a fuzzer, meets no refusal it could not have known about.
//!
//! The annotations on the handlers describe shapes; the rules live in the parsers (the
//! params of each action, the service and rule documents, the list filters). This pass
//! writes those rules into the document: the query parameters of every report and of
//! `POST /backups/opsmanager` are derived from the action's own params schema, each action
//! gets its own `POST /actions/{name}/runs` operation with its params as the body, rule steps
//! are one of the actions with its params, and the remaining parameters and body fields get
//! their enums, patterns and `propertyNames`.
//!
//! What JSON Schema cannot state is said in the descriptions and listed in docs/api.md:
//! rules between query parameters (`all_regions` with `regions`; a period's start before its
//! end), the grammar of a cron schedule, and what depends on the server's state or clock (a
//! stale `If-Match`, a cursor from another listing, a token expiry in the past).

use serde_json::{Value, json};

use crate::actions::params::refine::{self, property};
use crate::actions::params::{NO_NUL, SERVICE_KEY};
use crate::actions::{self, ErasedAction};
use crate::config::limits;

/// Reports and the action whose params are their query.
const QUERY_OPERATIONS: &[(&str, &str, &str, &[&str])] = &[
    ("/reports/aws/ec2", "get", "aws.ec2.report", &[]),
    ("/reports/aws/rds", "get", "aws.rds.report", &[]),
    ("/reports/aws/ebs", "get", "aws.ebs.report", &[]),
    ("/reports/aws/savings", "get", "aws.savings.report", &[]),
    ("/reports/aws/lambda", "get", "aws.lambda.report", &[]),
    (
        "/reports/aws/organizations",
        "get",
        "aws.organizations.report",
        &[],
    ),
    ("/reports/aws/ce", "get", "aws.ce.report", &[]),
    (
        "/services/{key}/report",
        "get",
        "services.report",
        &["service"],
    ),
    ("/reports/chef/reconcile", "get", "chef.reconcile", &[]),
    ("/backups/opsmanager", "post", "opsmanager.backup", &[]),
];

/// Text with a character that is not white space, and no NUL (`\S` alone would match one).
const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";

/// Every value `format=` takes.
const FORMATS: &[&str] = &["json", "csv", "markdown", "md", "html", "table", "text"];

/// Reports answered in JSON only (several reports in one document).
const JSON_ONLY: &[&str] = &["/services/{key}/report"];

/// A link target pincher accepts: http(s), a host name whose labels start with a letter, an
/// optional port and a plain path. Narrower than what the server accepts, never wider.
const LINK_URL: &str = "^https?://[a-z][a-z0-9]*(-[a-z0-9]+)*(\\.[a-z][a-z0-9]*(-[a-z0-9]+)*)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$";

/// Tightens `doc` (the document as JSON) in place.
pub fn tighten(doc: &mut Value) {
    for (path, method, action, skip) in QUERY_OPERATIONS {
        if let Some(action) = actions::find(action) {
            derive_query(doc, path, method, action, skip);
        }
    }
    action_operations(doc);
    named_parameters(doc);
    schemas(doc);
    if let Some(body) = doc.pointer_mut(
        "/paths/~1rules~1{key}/patch/requestBody/content/application~1merge-patch+json/schema",
    ) {
        *body = json!({"$ref": "#/components/schemas/RulePatch"});
    }
}

/// The operation `method path`, when the document has it.
fn operation<'a>(doc: &'a mut Value, path: &str, method: &str) -> Option<&'a mut Value> {
    doc.get_mut("paths")?.get_mut(path)?.get_mut(method)
}

/// Replaces `$ref`s into the schema's own `$defs` with what they point to, so the schema can
/// sit anywhere in the document.
pub fn inline_defs(mut schema: Value) -> Value {
    let defs = schema
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .unwrap_or(Value::Null);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    fn walk(value: &mut Value, defs: &Value) {
        match value {
            Value::Object(object) => {
                if let Some(target) = object
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .and_then(|name| defs.get(name))
                {
                    let mut target = target.clone();
                    walk(&mut target, defs);
                    object.remove("$ref");
                    if let Value::Object(target) = target {
                        for (key, value) in target {
                            object.entry(key).or_insert(value);
                        }
                    }
                }
                object.values_mut().for_each(|v| walk(v, defs));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, defs)),
            _ => {}
        }
    }
    walk(&mut schema, &defs);
    schema
}

/// The schema of a property as a query parameter: no `null`, no default, and for free text
/// at least one character (an empty value is refused).
fn query_schema(property: &Value) -> (Value, Option<String>) {
    let mut schema = property.clone();
    let mut description = None;
    if let Some(object) = schema.as_object_mut() {
        description = object
            .remove("description")
            .and_then(|d| d.as_str().map(str::to_owned));
        object.remove("default");
        // `oneOf: [{$ref …}]` as utoipa writes an optional enum: the one member itself.
        if let Some(Value::Array(members)) = object.remove("oneOf") {
            for member in members {
                if let Value::Object(member) = member {
                    for (key, value) in member {
                        if key != "description" {
                            object.entry(key).or_insert(value);
                        }
                    }
                }
            }
        }
        if let Some(Value::Array(types)) = object.get("type") {
            let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            if types.len() == 1 {
                object.insert("type".into(), types[0].clone());
            }
        }
    }
    let is = |schema: &Value, kind: &str| schema.get("type").and_then(Value::as_str) == Some(kind);
    if is(&schema, "string") {
        free_text_in_query(&mut schema);
    }
    if is(&schema, "array") {
        schema = comma_list(&schema);
    }
    (schema, description)
}

/// A list as the query takes it: one value, the items separated by commas (each checked as
/// the list's items are, at most `maxItems` of them). The form of the whole value is one
/// regular expression, so it is exact where an array of items would not be: an item cannot
/// hold a comma, and an empty value or item is refused.
fn comma_list(array: &Value) -> Value {
    let items = &array["items"];
    let item = if let Some(choices) = items["enum"].as_array() {
        let choices: Vec<String> = choices
            .iter()
            .filter_map(Value::as_str)
            .map(regex_escape)
            .collect();
        format!("(?:{})", choices.join("|"))
    } else if let Some(pattern) = items["pattern"].as_str() {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap_or(pattern);
        // Character classes that would take a comma lose it: the comma separates items.
        format!(
            "(?:{})",
            inner.replace("[\\s\\S]", "[^,]").replace("[^=]", "[^=,]")
        )
    } else {
        "[^,]+".to_owned()
    };
    let repeat = match array["maxItems"].as_u64() {
        Some(most) if most >= 1 => format!("{{0,{}}}", most - 1),
        _ => "*".to_owned(),
    };
    json!({"type": "string", "pattern": format!("^{item}(?:,{item}){repeat}$")})
}

/// `text` with the characters regular expressions give meaning to escaped.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A free-text query value needs at least one character and no NUL.
fn free_text_in_query(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let constrained = ["pattern", "enum", "format", "const"]
        .iter()
        .any(|k| object.contains_key(*k));
    if !constrained && object.get("type").and_then(Value::as_str) == Some("string") {
        object.insert("minLength".into(), json!(1));
        object.insert("pattern".into(), json!(NO_NUL));
    }
}

/// Replaces the query parameters of `method path` with those of `action`'s params (less
/// `skip`), keeping its path parameters and any query parameter the params do not have
/// (`dry_run`).
fn derive_query(
    doc: &mut Value,
    path: &str,
    method: &str,
    action: &dyn ErasedAction,
    skip: &[&str],
) {
    let schema = inline_defs(action.params_schema());
    let aliases = action.query_aliases();
    let mut derived = Vec::new();
    let mut names = Vec::new();
    if method == "get" {
        derived.push(if JSON_ONLY.contains(&path) {
            json!({
                "name": "format", "in": "query", "required": false,
                "description": "json, the only format of this report",
                "schema": {"type": "string", "enum": ["json"]}
            })
        } else {
            json!({
                "name": "format", "in": "query", "required": false,
                "description": "json (default), csv, markdown, html or table; or use Accept",
                "schema": {"type": "string", "enum": FORMATS}
            })
        });
        names.push("format".to_owned());
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (property_name, property) in properties {
            if skip.contains(&property_name.as_str()) {
                continue;
            }
            let shadowed = aliases.iter().any(|(alias, _)| alias == property_name);
            let name = if shadowed {
                aliases
                    .iter()
                    .find(|(_, target)| target == property_name)
                    .map(|(alias, _)| (*alias).to_owned())
            } else {
                Some(property_name.clone())
            };
            let Some(name) = name else { continue };
            let (schema, description) = query_schema(property);
            if schema.get("type").and_then(Value::as_str) == Some("object") {
                continue;
            }
            let mut parameter = json!({
                "name": name, "in": "query", "required": false, "schema": schema
            });
            if let Some(description) = description {
                parameter["description"] = json!(description);
            }
            names.push(name);
            derived.push(parameter);
        }
    }
    let Some(operation) = operation(doc, path, method) else {
        return;
    };
    let kept: Vec<Value> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|parameters| {
            parameters
                .iter()
                .filter(|p| p["in"] != "query" || !names.iter().any(|n| p["name"] == n.as_str()))
                .filter(|p| p["in"] != "query" || p["name"] == "dry_run")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut parameters = kept;
    parameters.extend(derived);
    operation["parameters"] = Value::Array(parameters);
}

/// One `POST /actions/NAME/runs` per action, with the action's params as the body, in place
/// of the generic `POST /actions/{name}/runs`.
fn action_operations(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(template) = paths.remove("/actions/{name}/runs") else {
        return;
    };
    for action in actions::registry() {
        let mut item = template.clone();
        if let Some(operation) = item.get_mut("post") {
            if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
                parameters.retain(|p| p["name"] != "name");
            }
            operation["operationId"] = json!(format!("run_{}", action.name().replace('.', "_")));
            operation["summary"] = json!(action.summary());
            let empty_is_valid = action.check(json!({})).is_ok();
            operation["requestBody"] = json!({
                "description": if empty_is_valid {
                    "The action's params; none (or `{}`) takes the defaults"
                } else {
                    "The action's params"
                },
                "required": !empty_is_valid,
                "content": {"application/json": {"schema": inline_defs(action.params_schema())}}
            });
        }
        paths.insert(format!("/actions/{}/runs", action.name()), item);
    }
}

/// Rules for parameters that are the same wherever they appear.
fn named_parameters(doc: &mut Value) {
    let names: Vec<&str> = actions::registry().iter().map(|a| a.name()).collect();
    let tag_filters = limits::current().tag_filters;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(Value::Array(parameters)) = operation.get_mut("parameters") else {
                continue;
            };
            for parameter in parameters.iter_mut() {
                let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                let location = parameter["in"].as_str().unwrap_or_default().to_owned();
                let schema = match (location.as_str(), name.as_str()) {
                    ("query", "cursor") => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
                    ("query", "owner" | "q") => json!({"type": "string", "pattern": NO_NUL}),
                    ("query", "tag") if path == "/services" => json!({
                        "type": "array", "maxItems": tag_filters,
                        "items": {"type": "string", "pattern": "^[^\\u0000:]*:[^\\u0000]*$"}
                    }),
                    ("query", "action") => json!({"type": "string", "enum": names}),
                    ("query", "outcome") => json!({
                        "type": "string", "enum": ["running", "ok", "partial", "failed", "abandoned"]
                    }),
                    ("query", "trigger") => {
                        json!({"type": "string", "enum": ["cli", "http", "rule"]})
                    }
                    ("path", "key") if path.starts_with("/tokens") => {
                        json!({"type": "string", "minLength": 1, "pattern": NO_NUL})
                    }
                    ("path", "key") => json!({"type": "string", "pattern": SERVICE_KEY}),
                    ("path", "id") => json!({"type": "string", "format": "uuid"}),
                    _ => continue,
                };
                parameter["schema"] = schema;
            }
        }
    }
}

/// The body schemas: service, token and rule documents.
fn schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, patch) in [("ServiceWrite", false), ("ServicePatch", true)] {
        if let Some(schema) = schemas.get_mut(name) {
            service_document(schema, patch);
        }
    }
    if let Some(schema) = schemas.get_mut("TokenRequest") {
        refine::set(schema, "name", "pattern", json!(NOT_BLANK));
    }
    if let Some(schema) = schemas.get_mut("RuleWrite") {
        rule_document(schema);
    }
    let patch = schemas.get("RuleWrite").map(rule_patch);
    if let Some(patch) = patch {
        schemas.insert("RulePatch".into(), patch);
    }
    schemas.insert("MetadataValue".into(), metadata_value());
}

/// A JSON value with no NUL in any string or key (what `metadata` may hold).
fn metadata_value() -> Value {
    json!({
        "description": "Any JSON value with no NUL character in a string or key.",
        "anyOf": [
            {"type": ["number", "boolean", "null"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": {"$ref": "#/components/schemas/MetadataValue"}},
            {
                "type": "object",
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": {"$ref": "#/components/schemas/MetadataValue"}
            }
        ]
    })
}

fn service_document(schema: &mut Value, patch: bool) {
    let nullable = |kind: &str| {
        if patch {
            json!([kind, "null"])
        } else {
            json!(kind)
        }
    };
    for field in ["display_name", "description"] {
        refine::set(schema, field, "pattern", json!(NO_NUL));
    }
    refine::set(schema, "owner", "pattern", json!(NOT_BLANK));
    if patch {
        // Neither can be removed: `null` is refused.
        for field in ["name", "owner"] {
            if let Some(property) = property(schema, field) {
                property.insert("type".into(), json!("string"));
            }
        }
    }
    if let Some(tags) = property(schema, "tags") {
        tags.insert("maxProperties".into(), json!(50));
        tags.insert(
            "propertyNames".into(),
            json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^(?!aws:)[^\\u0000]*$"}),
        );
        tags.insert(
            "additionalProperties".into(),
            json!({"type": nullable("string"), "maxLength": 256, "pattern": NO_NUL}),
        );
    }
    if let Some(links) = property(schema, "links") {
        links.insert(
            "propertyNames".into(),
            json!({"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}),
        );
        links.insert(
            "additionalProperties".into(),
            json!({"type": nullable("string"), "maxLength": 2048, "pattern": LINK_URL}),
        );
    }
    if let Some(metadata) = property(schema, "metadata") {
        metadata.insert(
            "additionalProperties".into(),
            json!({"$ref": "#/components/schemas/MetadataValue"}),
        );
        metadata.insert("propertyNames".into(), json!({"pattern": NO_NUL}));
    }
}

/// Adds "no NUL" to every string and object key a schema allows: a rule is stored as text,
/// which cannot hold one.
fn without_nul(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let kind = object.get("type").cloned().unwrap_or(Value::Null);
    let is =
        |name: &str| kind == name || kind.as_array().is_some_and(|k| k.iter().any(|t| t == name));
    if is("string") && !object.contains_key("enum") && !object.contains_key("format") {
        match object.remove("pattern") {
            None => {
                object.insert("pattern".into(), json!(NO_NUL));
            }
            Some(pattern) => {
                object.insert(
                    "allOf".into(),
                    json!([{"pattern": pattern}, {"pattern": NO_NUL}]),
                );
            }
        }
    }
    if is("object") {
        let names = object
            .entry("propertyNames")
            .or_insert_with(|| json!({"type": "string"}));
        without_nul(names);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = object.get_mut(key) {
            without_nul(child);
        }
    }
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.values_mut().for_each(without_nul);
    }
}

/// A step: one of the actions, with that action's params.
fn step_schema() -> Value {
    let branches: Vec<Value> = actions::registry()
        .iter()
        .map(|action| {
            let mut params = inline_defs(action.params_schema());
            without_nul(&mut params);
            let mut branch = json!({
                "type": "object",
                "properties": {
                    "action": {"const": action.name()},
                    "params": params
                },
                "required": ["action"],
                "additionalProperties": false
            });
            if action.check(json!({})).is_err() {
                branch["required"] = json!(["action", "params"]);
            }
            branch
        })
        .collect();
    json!({"description": "One step: a registered action and its params.", "oneOf": branches})
}

fn rule_document(schema: &mut Value) {
    refine::set(schema, "description", "pattern", json!(NO_NUL));
    refine::set(schema, "service", "pattern", json!(SERVICE_KEY));
    if let Some(timezone) = property(schema, "timezone") {
        let mut zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        zones.sort_unstable();
        zones.dedup();
        timezone.insert("enum".into(), json!(zones));
    }
    if let Some(schedule) = property(schema, "schedule") {
        // The characters of cron expressions and macros; the grammar itself is in the
        // description and checked by the server.
        schedule.insert("pattern".into(), json!("^[0-9A-Za-z*/,?#@ -]+$"));
    }
    if let Some(steps) = property(schema, "steps") {
        steps.insert("minItems".into(), json!(1));
        steps.insert("maxItems".into(), json!(crate::domain::rule::MAX_STEPS));
        steps.insert("items".into(), step_schema());
    }
    if let Some(object) = schema.as_object_mut() {
        object.insert("additionalProperties".into(), json!(false));
        // Read-only fields of a fetched rule are accepted and ignored.
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for field in ["id", "created_at", "updated_at", "revision"] {
                properties
                    .entry(field)
                    .or_insert(json!({"description": "Ignored (read-only).", "readOnly": true}));
            }
        }
    }
}

/// A JSON Merge Patch of a rule: the writable fields, each optional; `null` resets an
/// optional one.
fn rule_patch(write: &Value) -> Value {
    let mut patch = write.clone();
    if let Some(object) = patch.as_object_mut() {
        object.remove("required");
        object.insert(
            "description".into(),
            json!("A JSON Merge Patch of a rule (the body of PATCH): every field optional; `null` resets an optional field."),
        );
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for field in ["id", "created_at", "updated_at", "revision"] {
                properties.remove(field);
            }
        }
    }
    patch
}
