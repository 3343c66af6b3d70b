//! The HTTP face: one router merging each resource's routes, wrapped in the middleware stack.

pub mod backups;
pub mod error;
pub mod extract;
pub mod index;
pub mod metrics;
pub mod openapi;
pub mod reports;
pub mod services;
pub mod status;
pub mod tokens;

use axum::Router;

use crate::app::AppState;
use crate::middleware;
use error::ApiError;

/// The whole application, ready to serve with `axum::serve`.
pub fn router(state: AppState) -> middleware::HttpService {
    let routes: Router<AppState> = openapi::api().split_for_parts().0;
    let routes = routes
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    middleware::HttpService::new(routes, state)
}
