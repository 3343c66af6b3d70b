//! The OpenAPI 3.1 document, generated from the route handlers' annotations and served at
//! `/openapi.json`. Routes are only ever registered through `utoipa_axum::routes!`, so a route
//! cannot exist without its entry in the document.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middleware::AppState;

/// Top-level information of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pincher",
        description = "Service registry, cloud reports and ops-config backups. Errors are \
                       application/problem+json (RFC 9457).",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    components(schemas(
        crate::middleware::error::Problem,
        crate::domain::FieldError,
        crate::domain::run::Run
    )),
    tags(
        (name = "meta", description = "Index, health probes, metrics and this document"),
        (name = "services", description = "The registry of services"),
        (name = "tokens", description = "API tokens (admin scope)"),
        (name = "backups", description = "Ops Manager automation-config backups"),
        (name = "reports", description = "AWS inventory and cost reports"),
        (name = "actions", description = "The actions, their runs, and the record of every run"),
        (name = "rules", description = "Rules: ordered steps of actions, on demand or on a schedule")
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `pincher tokens create` or POST /tokens.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route of the API with its documentation, before state is attached.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .merge(super::index::router())
        .merge(super::status::router())
        .merge(super::metrics::router())
        .merge(super::services::router())
        .merge(super::tokens::router())
        .merge(super::backups::router())
        .merge(super::reports::router())
        .merge(super::actions::router())
        .merge(super::runs::router())
        .merge(super::rules::router())
}

/// The document, built once.
pub static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
    let mut doc = api().split_for_parts().1;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
});

/// The document as served: [`DOCUMENT`] made exact by [`super::contract::tighten`].
pub static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(&*DOCUMENT).unwrap_or_default();
    super::contract::tighten(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
});

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    let mut response = DOCUMENT_JSON.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
