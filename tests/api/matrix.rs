//! The authorization matrix: every operation in the OpenAPI document, called anonymously and
//! with read, write and admin tokens. A caller below the operation's scope is refused (401
//! without a token, 403 with too small a scope) and changes nothing; a caller with the scope
//! gets past authentication.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::support::database::Backend;
use pincher::domain::token::Scope;

/// What the matrix expects of one caller on one operation.
#[derive(Debug, PartialEq)]
enum Expect {
    Unauthenticated,
    Forbidden,
    Allowed,
}

/// The scope an operation needs: none for the public ones, admin for tokens, read for reads,
/// write for the rest. Written out here rather than taken from the code it checks.
fn needed(method: &Method, path: &str) -> Option<Scope> {
    if crate::openapi::PUBLIC.contains(&path) && (*method == Method::GET || path != "/") {
        None
    } else if path.starts_with("/tokens") {
        Some(Scope::Admin)
    } else if *method == Method::GET {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

fn expect(caller: Option<Scope>, needed: Option<Scope>) -> Expect {
    match (caller, needed) {
        (_, None) => Expect::Allowed,
        (None, Some(_)) => Expect::Unauthenticated,
        (Some(have), Some(need)) if have < need => Expect::Forbidden,
        _ => Expect::Allowed,
    }
}

/// A concrete path for a template, and a query (or body) that fails validation after
/// authentication, so no allowed call reaches AWS or Ops Manager or changes anything.
fn concrete(path: &str) -> String {
    let path = path
        .replace("{key}", "no-such-thing")
        .replace("{name}", "no.such.action")
        .replace("{id}", "0190c3a6-0000-7000-8000-000000000000");
    if path.starts_with("/reports/") || path.ends_with("/report") || path == "/backups/opsmanager" {
        format!("{path}?not_a_parameter=1")
    } else {
        path
    }
}

/// What an admin sees of everything that could change, `last_used_at` left out (using a
/// token is meant to change that).
async fn snapshot(app: &TestApp) -> Value {
    let mut state = json!({});
    for path in [
        "/services?limit=500",
        "/rules?limit=500",
        "/runs?limit=500",
        "/tokens",
    ] {
        let mut body: Value = app.get(path).await.json().await.expect("json");
        if let Value::Array(tokens) = &mut body {
            for token in tokens {
                if let Some(token) = token.as_object_mut() {
                    token.remove("last_used_at");
                }
            }
        }
        state[path] = body;
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_each_caller_as_its_scope_allows() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_service(&json!({"name": "existing", "owner": "t"}))
        .await;
    let tokens = [
        (None, None),
        (
            Some(Scope::Read),
            Some(app.create_token("matrix-read", Scope::Read).await),
        ),
        (
            Some(Scope::Write),
            Some(app.create_token("matrix-write", Scope::Write).await),
        ),
        (
            Some(Scope::Admin),
            Some(app.create_token("matrix-admin", Scope::Admin).await),
        ),
    ];
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    let before = snapshot(&app).await;
    let client = crate::helpers::client_with_token(None);
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let need = needed(&method, path);
            for (caller, token) in &tokens {
                let mut request =
                    client.request(method.clone(), format!("{}{}", app.address, concrete(path)));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                    // A field no body takes: refused after authentication, before any work.
                    request = request.json(&json!({"not_a_field": true}));
                }
                let status = request.send().await.expect("send").status().as_u16();
                let wanted = expect(*caller, need);
                let ok = match wanted {
                    Expect::Unauthenticated => status == 401,
                    Expect::Forbidden => status == 403,
                    Expect::Allowed => status != 401 && status != 403 && status < 500,
                };
                if !ok {
                    failures.push(format!(
                        "{method} {path} as {caller:?}: {status}, expected {wanted:?}"
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 4 * 30, "only {checked} calls");
    assert_eq!(snapshot(&app).await, before, "a call changed something");
}
