//! The HTTP face: one router merging each resource's routes, wrapped in the middleware stack.

pub mod error;
pub mod extract;
pub mod index;
pub mod reports;
pub mod services;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::app::AppState;
use crate::middleware;
use error::ApiError;

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.server.body_limit_bytes;
    let routes = Router::new()
        .merge(index::router())
        .merge(services::router())
        .merge(reports::router())
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit));
    middleware::apply(routes, &state).with_state(state)
}
