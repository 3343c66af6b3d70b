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
    // Every other listing the API has (reports, backups): each GET route without a path
    // parameter, named by its path (`reports.aws.ec2` for /reports/aws/ec2).
    for path in super::openapi::DOCUMENT.paths.paths.keys() {
        let listed = links
            .as_object()
            .is_some_and(|l| l.values().any(|v| v == path.as_str()));
        // `/metrics` is linked above only when it is served here.
        let plain_get = !path.contains('{')
            && path != "/"
            && path != "/metrics"
            && super::openapi::DOCUMENT.paths.paths[path].get.is_some();
        if plain_get && !listed {
            links[path.trim_start_matches('/').replace('/', ".")] = json!(path);
        }
    }
    Json(json!({
        "name": "pincher",
        "version": env!("CARGO_PKG_VERSION"),
        "links": links,
    }))
}
