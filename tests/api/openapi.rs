//! `/openapi.json`: every route has its entry, and every entry is a route.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::support::database::Backend;

/// The operations that need no token.
pub const PUBLIC: &[&str] = &[
    "/",
    "/openapi.json",
    "/status",
    "/status/live",
    "/status/ready",
    "/metrics",
];

async fn document() -> (crate::helpers::TestApp, Value) {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .anonymous(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.expect("json");
    (app, doc)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
    let (_app, doc) = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for name in [
        "Service",
        "ServiceList",
        "ServiceWrite",
        "Problem",
        "FieldError",
        "ApiToken",
        "CreatedToken",
        "TokenRequest",
    ] {
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name}"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_secured_as_documented() {
    let (app, doc) = document().await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10);
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let secured = operation.get("security").is_some();
            assert_eq!(
                secured,
                !PUBLIC.contains(&path.as_str()),
                "{method} {path}: security"
            );
            if secured {
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} documents 401"
                );
            }
            let concrete = path.replace("{key}", "x");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app
                .request(method.clone(), &concrete)
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body.contains("no such resource"),
                "{method} {path} is documented but not routed"
            );
        }
    }
}

/// Routes are registered only through `utoipa_axum::routes!`, which adds each to the document;
/// this fails when a route is added any other way. The dashboard's pages are the one
/// exception (HTML for browsers, not API): each is listed in `routes::dashboard::ROUTES`,
/// which gives it its metrics label.
#[test]
fn no_route_is_registered_outside_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/routes") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let pages = path.file_name().is_some_and(|n| n == "dashboard.rs");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if pages {
                let listed = code
                    .split('"')
                    .nth(1)
                    .is_some_and(|route| pincher::routes::dashboard::ROUTES.contains(&route));
                if code.contains(".route(") && listed {
                    continue;
                }
            }
            if [".route(", ".route_service(", ".nest(", ".nest_service("]
                .iter()
                .any(|c| code.contains(c))
            {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "routes outside OpenApiRouter::routes(routes!(…)):\n{}",
        offenders.join("\n")
    );
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let (_app, doc) = document().await;
    let mut seen = std::collections::BTreeMap::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let id = operation["operationId"].as_str().expect("an operationId");
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id:?} of {method} {path} is also {other}'s");
            }
        }
    }
    for name in ["Run", "TargetResult", "ActionInfo", "RunList"] {
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name}"
        );
    }
}

#[tokio::test]
async fn each_report_offers_only_the_formats_it_serves() {
    let (_app, doc) = document().await;
    let format = |path: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "format")
            .map(|p| p["schema"]["enum"].clone())
            .unwrap_or_else(|| panic!("{path} has no format parameter"))
    };
    assert_eq!(
        format("/services/{key}/report"),
        serde_json::json!(["json"])
    );
    let savings = format("/reports/aws/savings");
    assert!(
        savings
            .as_array()
            .is_some_and(|f| f.len() > 1 && f.contains(&"html".into())),
        "{savings}"
    );
}

/// The document's pattern for "not blank, no NUL" text takes exactly what the server takes,
/// so a client (or a fuzzer) drawing from the document never sends text the server refuses.
#[tokio::test]
async fn not_blank_text_patterns_take_what_the_server_takes() {
    let (app, doc) = document().await;
    let pattern = |schema: &str, field: &str| {
        let source = doc["components"]["schemas"][schema]["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
        regex::Regex::new(source).expect("the pattern compiles")
    };
    let owner = pattern("ServiceWrite", "owner");
    let token_name = pattern("TokenRequest", "name");
    let texts = [
        "payments", " a ", "é", "a\u{0}b", "\u{0}", "\u{0}a", "a\u{0}", " \u{0} ", " ", "\t\n",
    ];
    for (i, text) in texts.iter().enumerate() {
        let created = app
            .create_service(&json!({"name": format!("svc-{i}"), "owner": text}))
            .await
            .status();
        assert_eq!(
            created == 201,
            owner.is_match(text),
            "owner {text:?}: the server answered {created}, the pattern says {}",
            owner.is_match(text)
        );
        let created = app
            .request(Method::POST, "/tokens")
            .json(&json!({"name": text, "scope": "read"}))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(
            created == 201,
            token_name.is_match(text),
            "token name {text:?}: the server answered {created}, the pattern says {}",
            token_name.is_match(text)
        );
    }
}
