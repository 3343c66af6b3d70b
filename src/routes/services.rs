//! `/services`: the registry of services, with paging, filters and optimistic concurrency.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{IfMatch, JsonBody};
use crate::app::AppState;
use crate::db::services as repo;
use crate::domain::service::{Service, ServiceFilter, ServiceKey, ServiceName, ServiceSpec};

/// Default page size of `GET /services`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of `GET /services`.
pub const MAX_LIMIT: u32 = 500;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(list).post(create))
        .route(
            "/services/{key}",
            get(show).put(replace).patch(patch).delete(remove),
        )
}

/// A page of services.
#[derive(Debug, Serialize)]
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
            match key.as_ref() {
                "owner" => q.filter.owner = Some(value.into_owned()),
                "q" => q.filter.name_prefix = Some(value.into_owned()),
                "tag" => {
                    let Some((k, v)) = value.split_once(':') else {
                        return Err(ApiError::bad_parameter("tag", "expected key:value"));
                    };
                    q.filter.tags.push((k.to_owned(), v.to_owned()));
                }
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::bad_parameter(
                                "limit",
                                format!("expected a whole number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                    q.limit = Some(limit);
                }
                "cursor" => q.cursor = Some(value.into_owned()),
                other => {
                    return Err(ApiError::bad_parameter(
                        other,
                        "unknown parameter; expected owner, tag, q, limit or cursor",
                    ));
                }
            }
        }
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

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let after = query.after()?;
    let page = repo::list(&state.db, &query.filter, limit, after.as_deref()).await?;
    let next = page.next_after.map(|after| query.next_link(&after, limit));
    let mut response = Json(ServiceList {
        items: page.items,
        next: next.clone(),
    })
    .into_response();
    if let Some(link) =
        next.and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

fn parse_key(key: &str) -> Result<ServiceKey, ApiError> {
    ServiceKey::parse(key).map_err(|_| ApiError::NotFound(format!("service {key:?} not found")))
}

fn with_etag(status: StatusCode, service: Service) -> Response {
    let etag = HeaderValue::from_str(&service.etag()).ok();
    let mut response = (status, Json(service)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn check_precondition(headers: &HeaderMap, current: &Service) -> Result<(), ApiError> {
    match IfMatch::from_headers(headers)? {
        Some(cond) if !cond.matches(&current.etag()) => Err(ApiError::PreconditionFailed(format!(
            "If-Match does not match the current ETag {} of service {}",
            current.etag(),
            current.name
        ))),
        _ => Ok(()),
    }
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let spec = ServiceSpec::from_json(&body)?;
    let service = repo::create(&state.db, &spec).await?;
    tracing::info!(service = %service.name, id = %service.id, "service created");
    let location = HeaderValue::from_str(&format!("/services/{}", service.id)).ok();
    let mut response = with_etag(StatusCode::CREATED, service);
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[tracing::instrument(skip_all, fields(service = %key))]
async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let service = repo::get(&state.db, &parse_key(&key)?).await?;
    Ok(with_etag(StatusCode::OK, service))
}

#[tracing::instrument(skip_all, fields(service = %key))]
async fn replace(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_precondition(&headers, &current)?;
    let spec = ServiceSpec::from_json(&body)?;
    let service = repo::update(&state.db, current.id, current.revision, &spec).await?;
    Ok(with_etag(StatusCode::OK, service))
}

#[tracing::instrument(skip_all, fields(service = %key))]
async fn patch(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let current = repo::get(&state.db, &parse_key(&key)?).await?;
    check_precondition(&headers, &current)?;
    let spec = ServiceSpec::merge_patch(&current, &body)?;
    let service = repo::update(&state.db, current.id, current.revision, &spec).await?;
    Ok(with_etag(StatusCode::OK, service))
}

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
