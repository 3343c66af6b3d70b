//! A structural diff of two automation configurations: added, removed and changed paths
//! (JSON Pointers) with their values, where secrets (keyfile contents, passwords, SCRAM
//! credentials) are masked.

use serde::Serialize;
use serde_json::Value;

/// Shown in place of a secret value.
pub const MASK: &str = "[redacted]";

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change {
    /// Present only in the second document.
    Added {
        /// JSON Pointer of the value.
        path: String,
        /// The value (masked if secret).
        value: Value,
    },
    /// Present only in the first document.
    Removed {
        /// JSON Pointer of the value.
        path: String,
        /// The value (masked if secret).
        value: Value,
    },
    /// Present in both with different values.
    Changed {
        /// JSON Pointer of the value.
        path: String,
        /// The first document's value (masked if secret).
        from: Value,
        /// The second document's value (masked if secret).
        to: Value,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added { path, value } => write!(f, "+ {path}: {}", short(value)),
            Self::Removed { path, value } => write!(f, "- {path}: {}", short(value)),
            Self::Changed { path, from, to } => {
                write!(f, "~ {path}: {} -> {}", short(from), short(to))
            }
        }
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 160 {
        let cut: String = text.chars().take(157).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Whether a member with this name holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "key" | "keyfilecontents" | "keytabcontents" | "scramsha1creds" | "scramsha256creds"
    ) || key.contains("pwd")
        || key.contains("password")
        || key.contains("secret")
}

/// Every difference from `a` to `b`, in document order.
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", a, b, false, &mut changes);
    changes
}

fn shown(value: &Value, secret: bool) -> Value {
    if secret {
        Value::String(MASK.into())
    } else {
        mask(value)
    }
}

/// A copy of `value` with every secret member masked.
pub fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String(MASK.into())
                    } else {
                        mask(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: &str, a: &Value, b: &Value, secret: bool, out: &mut Vec<Change>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(left), Value::Object(right)) if !secret => {
            for (key, av) in left {
                let child = format!("{path}/{}", pointer_token(key));
                let child_secret = is_secret_key(key);
                match right.get(key) {
                    Some(bv) => walk(&child, av, bv, child_secret, out),
                    None => out.push(Change::Removed {
                        path: child,
                        value: shown(av, child_secret),
                    }),
                }
            }
            for (key, bv) in right {
                if !left.contains_key(key) {
                    out.push(Change::Added {
                        path: format!("{path}/{}", pointer_token(key)),
                        value: shown(bv, is_secret_key(key)),
                    });
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if !secret => {
            for (index, av) in left.iter().enumerate() {
                let child = format!("{path}/{index}");
                match right.get(index) {
                    Some(bv) => walk(&child, av, bv, false, out),
                    None => out.push(Change::Removed {
                        path: child,
                        value: mask(av),
                    }),
                }
            }
            for (index, bv) in right.iter().enumerate().skip(left.len()) {
                out.push(Change::Added {
                    path: format!("{path}/{index}"),
                    value: mask(bv),
                });
            }
        }
        _ => out.push(Change::Changed {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            from: shown(a, secret),
            to: shown(b, secret),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_added_removed_and_changed_paths_with_secrets_masked() {
        let a = json!({
            "version": 1,
            "auth": {"key": "KEYFILE-A", "autoPwd": "pw-a", "usersWanted": [{"user": "app", "initPwd": "x"}]},
            "processes": [{"name": "rs0_0", "args2_6": {"net": {"port": 27017}}}],
            "gone": true
        });
        let b = json!({
            "version": 2,
            "auth": {"key": "KEYFILE-B", "autoPwd": "pw-a", "usersWanted": [{"user": "app", "initPwd": "x"}, {"user": "new", "initPwd": "y"}]},
            "processes": [{"name": "rs0_0", "args2_6": {"net": {"port": 27018}}}],
            "added": "a/b"
        });
        let changes = diff(&a, &b);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "~ /version: 1 -> 2",
                "~ /auth/key: \"[redacted]\" -> \"[redacted]\"",
                "+ /auth/usersWanted/1: {\"user\":\"new\",\"initPwd\":\"[redacted]\"}",
                "~ /processes/0/args2_6/net/port: 27017 -> 27018",
                "- /gone: true",
                "+ /added: \"a/b\"",
            ]
        );
        let all = serde_json::to_string(&changes).unwrap_or_default();
        assert!(!all.contains("KEYFILE") && !all.contains("\"y\""), "{all}");
    }
}
