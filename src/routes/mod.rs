//! The HTTP face: one router merging each resource's routes, wrapped in the middleware stack.

pub mod actions;
pub mod backups;
pub mod contract;
pub mod dashboard;
pub mod extract;
pub mod index;
pub mod metrics;
pub mod openapi;
pub mod reports;
pub mod rules;
pub mod runs;
pub mod services;
pub mod status;
pub mod tokens;

use axum::Router;

use crate::middleware::{self, ApiError, AppState, RouteTemplates};

/// Default page size of every listing.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of every listing.
pub const MAX_LIMIT: u32 = 500;

/// A listing's `limit` parameter: a whole number from 1 to [`MAX_LIMIT`].
pub fn parse_limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "limit",
                format!("expected a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// `response` with `Location: path`, the address of what it created or started.
pub fn with_location(
    mut response: axum::response::Response,
    path: &str,
) -> axum::response::Response {
    if let Ok(location) = axum::http::HeaderValue::from_str(path) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    response
}

/// A page of a listing as JSON, its next page's URL also sent as `Link: <…>; rel="next"`.
pub fn page<T: serde::Serialize>(body: T, next: Option<&str>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(body).into_response();
    if let Some(link) =
        next.and_then(|n| axum::http::HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok())
    {
        response
            .headers_mut()
            .insert(axum::http::header::LINK, link);
    }
    response
}

/// Every route template of the API, from the OpenAPI document (which holds every route the
/// router has, see [`openapi`]).
pub fn route_templates() -> RouteTemplates {
    RouteTemplates::new(
        openapi::DOCUMENT
            .paths
            .paths
            .keys()
            .map(String::as_str)
            .chain(dashboard::ROUTES.iter().copied()),
    )
}

/// The whole application, ready to serve with `axum::serve`.
pub fn router(state: AppState) -> middleware::HttpService {
    let routes: Router<AppState> = openapi::api().split_for_parts().0;
    let routes = routes
        .merge(dashboard::router())
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    middleware::HttpService::new(routes, route_templates(), state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::UNMATCHED_ROUTE;

    #[test]
    fn paths_are_labelled_by_their_route_template() {
        let templates = route_templates();
        assert_eq!(templates.of("/services"), "/services");
        assert_eq!(templates.of("/services/billing"), "/services/{key}");
        assert_eq!(templates.of("/status/ready"), "/status/ready");
        assert_eq!(templates.of("/"), "/");
        assert_eq!(
            templates.of("/runs/0190c3a6-0000-7000-8000-000000000000"),
            "/runs/{id}"
        );
        assert_eq!(templates.of("/services/billing/extra"), UNMATCHED_ROUTE);
        assert_eq!(templates.of("/no/such/route"), UNMATCHED_ROUTE);
    }
}
