//! `GET /`: a JSON index of the API.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index(State(state): State<AppState>) -> Json<Value> {
    let mut links = json!({
        "services": "/services",
        "status": "/status",
        "live": "/status/live",
        "ready": "/status/ready",
    });
    if state.settings.metrics.listen.is_none() {
        links["metrics"] = json!("/metrics");
    }
    Json(json!({
        "name": "pincher",
        "version": env!("CARGO_PKG_VERSION"),
        "links": links,
    }))
}
