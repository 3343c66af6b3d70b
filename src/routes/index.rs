//! `GET /`: a JSON index of the API.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middleware::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index))
}

/// Links to the parts of the API.
#[utoipa::path(
    get,
    path = "/",
    tag = "meta",
    responses((status = 200, description = "Name, version and links to the API", body = Object))
)]
async fn index(State(state): State<AppState>) -> Json<Value> {
    let mut links = json!({
        "services": "/services",
        "actions": "/actions",
        "runs": "/runs",
        "rules": "/rules",
        "tokens": "/tokens",
        "status": "/status",
        "live": "/status/live",
        "ready": "/status/ready",
        "openapi": "/openapi.json",
    });
    if state.settings.metrics.listen.is_none() {
        links["metrics"] = json!("/metrics");
    }
    // The reports and the backups; a test checks that every plain GET route of the OpenAPI
    // document is linked from here.
    for path in [
        "/reports/aws/ec2",
        "/reports/aws/rds",
        "/reports/aws/ebs",
        "/reports/aws/savings",
        "/reports/aws/lambda",
        "/reports/aws/organizations",
        "/reports/aws/ce",
        "/reports/chef/reconcile",
        "/backups/opsmanager",
    ] {
        links[path.trim_start_matches('/').replace('/', ".")] = json!(path);
    }
    Json(json!({
        "name": "pincher",
        "version": env!("CARGO_PKG_VERSION"),
        "links": links,
    }))
}
