//! `GET /`: a JSON index of the API.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index() -> Json<Value> {
    Json(json!({
        "name": "pincher",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "services": "/services",
        }
    }))
}
