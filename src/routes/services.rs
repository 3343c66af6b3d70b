//! `/services`: the registry of services, with paging, filters and optimistic concurrency.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{JsonBody, check_if_match};
use crate::db::services as repo;
use crate::domain::service::{Service, ServiceFilter, ServiceKey, ServiceName, ServiceSpec};
use crate::middleware::AppState;
use crate::middleware::error::ApiError;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
}

/// The writable fields of a service (the body of POST and PUT). Read-only fields sent back
/// from a fetched document are ignored; any other field is rejected.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "documents the request body, which is parsed by ServiceSpec"
)]
pub struct ServiceWrite {
    /// Unique lowercase slug.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    name: String,
    /// Human-friendly name.
    #[schema(max_length = 256)]
    display_name: Option<String>,
    /// What the service does.
    #[schema(max_length = 4096)]
    description: Option<String>,
    /// Owning team.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    owner: String,
    /// Cost-allocation tags (at most 50; keys 1–128 characters not starting with `aws:`,
    /// values at most 256).
    tags: Option<std::collections::BTreeMap<String, String>>,
    /// Named http(s) links; names 1–32 of `[a-z0-9_-]`.
    links: Option<std::collections::BTreeMap<String, String>>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ignored (read-only).
    #[schema(read_only)]
    id: Option<uuid::Uuid>,
    /// Ignored (read-only).
    #[schema(read_only)]
    created_at: Option<String>,
    /// Ignored (read-only).
    #[schema(read_only)]
    updated_at: Option<String>,
}

/// A JSON Merge Patch of a service (the body of PATCH): every field optional; `null`
/// removes a key or resets an optional field.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "documents the request body, which is merged by ServiceSpec"
)]
pub struct ServicePatch {
    /// Unique lowercase slug (cannot be removed).
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    name: Option<String>,
    /// Human-friendly name.
    #[schema(max_length = 256, nullable)]
    display_name: Option<String>,
    /// What the service does.
    #[schema(max_length = 4096, nullable)]
    description: Option<String>,
    /// Owning team (cannot be removed).
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    owner: Option<String>,
    /// Tags to set; a `null` value removes that tag.
    #[schema(nullable)]
    tags: Option<std::collections::BTreeMap<String, Option<String>>>,
    /// Links to set; a `null` value removes that link.
    #[schema(nullable)]
    links: Option<std::collections::BTreeMap<String, Option<String>>>,
    /// Metadata to merge; `null` values remove keys.
    #[schema(value_type = Option<Object>, nullable)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A page of services.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceList {
    /// Services in name order.
    pub items: Vec<Service>,
    /// Relative URL of the next page, or null on the last page.
    pub next: Option<String>,
}

/// Query parameters of `GET /services`, parsed.
#[derive(Debug, Default)]
struct ListQuery {
    filter: ServiceFilter,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if value.contains('\0') {
                return Err(ApiError::bad_parameter(
                    &key,
                    "must not contain NUL characters",
                ));
            }
            match key.as_ref() {
                "owner" => q.filter.owner = Some(value.into_owned()),
                "q" => q.filter.name_prefix = Some(value.into_owned()),
                "tag" => {
                    let Some((k, v)) = value.split_once(':') else {
                        return Err(ApiError::bad_parameter("tag", "expected key:value"));
                    };
                    q.filter.tags.push((k.to_owned(), v.to_owned()));
                }
                "limit" => q.limit = Some(super::parse_limit(&value)?),
                "cursor" => q.cursor = Some(value.into_owned()),
                other => {
                    return Err(ApiError::bad_parameter(
                        other,
                        "unknown parameter; expected owner, tag, q, limit or cursor",
                    ));
                }
            }
            if q.filter.tags.len() > crate::config::limits::current().tag_filters {
                break;
            }
        }
        q.filter
            .check()
            .map_err(|e| ApiError::bad_parameter("tag", &e.message))?;
        Ok(q)
    }

    fn after(&self) -> Result<Option<String>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|name| ServiceName::parse(name).is_ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_parameter("cursor", "not a cursor returned by this API"))
    }

    fn next_link(&self, after: &str, limit: u32) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(owner) = &self.filter.owner {
            query.append_pair("owner", owner);
        }
        for (k, v) in &self.filter.tags {
            query.append_pair("tag", &format!("{k}:{v}"));
        }
        if let Some(prefix) = &self.filter.name_prefix {
            query.append_pair("q", prefix);
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair("cursor", &URL_SAFE_NO_PAD.encode(after));
        format!("/services?{}", query.finish())
    }
}

/// Lists services in name order, a page at a time.
#[utoipa::path(
    get,
    path = "/services",
    tag = "services",
    security(("bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque position from a previous page's `next`"),
        ("owner" = Option<String>, Query, description = "Only services of this owner"),
        ("tag" = Option<Vec<String>>, Query, description = "key:value; repeatable; all must match", style = Form, explode),
        ("q" = Option<String>, Query, description = "Name prefix")
    ),
    responses(
        (status = 200, description = "A page of services; `next` is also sent as a Link header", body = ServiceList),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;
    let limit = query.limit.unwrap_or(super::DEFAULT_LIMIT);
    let after = query.after()?;
    let page = repo::list(&state.db, &query.filter, limit, after.as_deref()).await?;
    let next = page.next_after.map(|after| query.next_link(&after, limit));
    let link = next.clone();
    Ok(super::page(
        ServiceList {
            items: page.items,
            next,
        },
        link.as_deref(),
    ))
}

fn parse_key(key: &str) -> Result<ServiceKey, ApiError> {
    ServiceKey::parse(key).map_err(|_| ApiError::NotFound(format!("service {key:?} not found")))
}

fn with_etag(status: StatusCode, service: Service) -> Response {
    let etag = service.etag();
    super::extract::with_etag(status, service, &etag)
}

fn check_precondition(headers: &HeaderMap, current: &Service) -> Result<(), ApiError> {
    check_if_match(
        headers,
        &current.etag(),
        &format!("service {}", current.name),
    )
}

/// Registers a service.
#[utoipa::path(
    post,
    path = "/services",
    tag = "services",
    security(("bearer" = [])),
    request_body(content = ServiceWrite, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location and ETag headers are set", body = Service),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        crate::middleware::error::ConflictProblems,
        crate::middleware::error::BodyProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = ServiceSpec::from_json(&body)?;
    let service = repo::create(&state.db, &spec).await?;
    tracing::info!(service = %service.name, id = %service.id, "service created");
    let location = format!("/services/{}", service.id);
    Ok(super::with_location(
        with_etag(StatusCode::CREATED, service),
        &location,
    ))
}

/// One service by id or name.
#[utoipa::path(
    get,
    path = "/services/{key}",
    tag = "services",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Service id (UUID) or name")),
    responses(
        (status = 200, description = "The service, with its ETag", body = Service),
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such service", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let service = repo::get(&state.db, &parse_key(&key)?).await?;
    Ok(with_etag(StatusCode::OK, service))
}

/// Replaces every writable field of a service.
#[utoipa::path(
    put,
    path = "/services/{key}",
    tag = "services",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Service id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the service must have, or *")),
    request_body(content = ServiceWrite, content_type = "application/json"),
    responses(
        (status = 200, description = "The service as stored, with its new ETag", body = Service),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such service", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::ConflictProblems,
        crate::middleware::error::PreconditionProblems,
        crate::middleware::error::BodyProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn replace(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = ServiceSpec::from_json(&body)?;
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_precondition(&headers, &current)?;
    let service = repo::update(&state.db, current.id, current.revision, &spec).await?;
    Ok(with_etag(StatusCode::OK, service))
}

/// Changes a service with a JSON Merge Patch (RFC 7396).
#[utoipa::path(
    patch,
    path = "/services/{key}",
    tag = "services",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Service id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the service must have, or *")),
    request_body(content = ServicePatch, content_type = "application/merge-patch+json", description = "Fields to change; null removes"),
    responses(
        (status = 200, description = "The service as stored, with its new ETag", body = Service),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such service", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::ConflictProblems,
        crate::middleware::error::PreconditionProblems,
        crate::middleware::error::BodyProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn patch(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    let spec = ServiceSpec::merge_patch(&current, &body)?;
    check_precondition(&headers, &current)?;
    let service = repo::update(&state.db, current.id, current.revision, &spec).await?;
    Ok(with_etag(StatusCode::OK, service))
}

/// Deletes a service.
#[utoipa::path(
    delete,
    path = "/services/{key}",
    tag = "services",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Service id (UUID) or name"), ("If-Match" = Option<String>, Header, description = "Entity tag(s) the service must have, or *")),
    responses(
        (status = 204, description = "Deleted"),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such service", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::ConflictProblems,
        crate::middleware::error::PreconditionProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
#[tracing::instrument(skip_all, fields(service = %key))]
async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_precondition(&headers, &current)?;
    if repo::delete(&state.db, current.id, Some(current.revision)).await? {
        tracing::info!(service = %current.name, id = %current.id, "service deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(format!(
            "service {} was changed or deleted by another request; fetch it again and retry",
            current.name
        )))
    }
}
