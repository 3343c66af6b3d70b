//! Request extractors whose rejections are [`ApiError`]s, so malformed input gets the same
//! problem documents as every other failure.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::middleware::{ApiError, AppState};

/// A JSON document from a request body with a JSON media type (`application/json` or any
/// `application/*+json`, such as `application/merge-patch+json`), of at most
/// `server.body_limit_bytes`.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        Ok(Self(parse_json(&read_body(req, state).await?)?))
    }
}

/// Like [`JsonBody`], but an empty body is no document.
#[derive(Debug)]
pub struct OptionalJsonBody(pub Option<Value>);

impl FromRequest<AppState> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        check_json_content_type(&headers)?;
        Ok(Self(Some(parse_json(&bytes)?)))
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded`, as a browser posts it), of
/// at most `server.body_limit_bytes`; of a repeated field, the last value stands.
#[derive(Debug)]
pub struct FormFields(pub std::collections::HashMap<String, String>);

impl FormFields {
    /// The field `name`, or a 400 naming it.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::bad_parameter(name, "missing from the form"))
    }
}

impl FromRequest<AppState> for FormFields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if essence.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType(
                "send the form as application/x-www-form-urlencoded".into(),
            ));
        }
        let bytes = read_body(req, state).await?;
        Ok(Self(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
        detail: format!("the request body is not valid JSON: {e}"),
        errors: Vec::new(),
    })
}

/// The body, refused when over `server.body_limit_bytes`.
async fn read_body(req: Request, state: &AppState) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.settings.server.body_limit_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    detail: format!("cannot read the request body: {e}"),
                    errors: Vec::new(),
                }
            }
        })
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "missing Content-Type; send application/json".into(),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {essence:?} is not accepted; send application/json"
        )))
    }
}

/// The `If-Match` precondition of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `If-Match: *`: the resource must exist.
    Any,
    /// The resource's entity tag must be one of these.
    Tags(Vec<String>),
}

impl IfMatch {
    /// Reads `If-Match`; `None` when the header is absent.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let values: Vec<&str> = headers
            .get_all(header::IF_MATCH)
            .iter()
            .map(|v| {
                v.to_str().map_err(|_| ApiError::BadRequest {
                    detail: "If-Match is not valid text".into(),
                    errors: Vec::new(),
                })
            })
            .collect::<Result<_, _>>()?;
        if values.is_empty() {
            return Ok(None);
        }
        let tags: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if tags.iter().any(|t| t == "*") {
            Ok(Some(Self::Any))
        } else {
            Ok(Some(Self::Tags(tags)))
        }
    }

    /// Whether an entity with `etag` satisfies the precondition (strong comparison).
    pub fn matches(&self, etag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

/// Refuses a write when `If-Match` does not match `etag`, the current tag of `what` (e.g.
/// `service billing`): 412.
pub fn check_if_match(headers: &HeaderMap, etag: &str, what: &str) -> Result<(), ApiError> {
    match IfMatch::from_headers(headers)? {
        Some(cond) if !cond.matches(etag) => Err(ApiError::PreconditionFailed(format!(
            "If-Match does not match the current ETag {etag} of {what}"
        ))),
        _ => Ok(()),
    }
}

/// `body` as JSON with `status` and an `ETag` header.
pub fn with_etag<T: serde::Serialize>(
    status: axum::http::StatusCode,
    body: T,
    etag: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let etag = axum::http::HeaderValue::from_str(etag).ok();
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn if_match_takes_lists_and_star() -> Result<(), ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"a\", \"b\""));
        let cond = IfMatch::from_headers(&headers)?;
        assert!(cond.as_ref().is_some_and(|c| c.matches("\"b\"")));
        assert!(!cond.as_ref().is_some_and(|c| c.matches("\"c\"")));
        assert!(!cond.is_some_and(|c| c.matches("W/\"a\"")));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(IfMatch::from_headers(&headers)?, Some(IfMatch::Any));
        Ok(())
    }
}
