//! `GET /`: a JSON index of the API, or the dashboard for a browser (`Accept: text/html`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
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
    responses(
        (status = 200, description = "Name, version and links to the API; the dashboard for a browser (Accept: text/html)", content(
            (Object = "application/json"),
            (String = "text/html")
        ))
    )
)]
async fn index(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if crate::middleware::auth::wants_html(&headers) {
        let notice = crate::routes::dashboard::notice(query.as_deref());
        return crate::routes::dashboard::home(&state, &headers, notice).await;
    }
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
    links["dashboard.login"] = json!("/login");
    Json(json!({
        "name": "pincher",
        "version": env!("CARGO_PKG_VERSION"),
        "links": links,
    }))
    .into_response()
}
