//! The HTTP error type: every failure leaves as `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;
use crate::domain::{FieldError, ValidationErrors};

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, bad query parameter).
    #[error("{detail}")]
    BadRequest {
        /// What was wrong.
        detail: String,
        /// The parameters at fault, if any.
        errors: Vec<FieldError>,
    },
    /// Credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are valid but lack the scope needed.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this resource.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (duplicate name, concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` did not match the current entity tag.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is over the configured limit.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// The request headers are over the configured limit.
    #[error("the request headers are larger than the limit")]
    HeadersTooLarge,
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is well-formed but some fields are invalid.
    #[error("{0}")]
    Validation(ValidationErrors),
    /// A dependency (the database) is unavailable, or the request ran out of time.
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests are being served; retry shortly.
    #[error("the server is at its concurrency limit; retry shortly")]
    Overloaded,
    /// A bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A problem document (RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Short summary of the kind of problem.
    pub title: &'a str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The fields or parameters at fault (400 and 422 only).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    pub errors: &'a [FieldError],
}

/// A documented problem response (`application/problem+json`, the `Problem` schema).
pub fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::content::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// Declares a set of documented problem responses, for `responses(...)` of route annotations:
/// each status once, with its description, as `application/problem+json`.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? }) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                [$(($status, $description)),+]
                    .into_iter()
                    .map(|(status, description)| {
                        (status.to_owned(), $crate::middleware::error::problem_response(description))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use problem_set;

problem_set! {
    /// 401 and 403: every operation that needs a token.
    AuthProblems {
        "401" => "Missing or invalid token",
        "403" => "The token lacks the scope",
    }
}

problem_set! {
    /// 503: every operation that reads or writes the database.
    DatabaseProblems {
        "503" => "Database unavailable",
    }
}

problem_set! {
    /// 400: a body that is not JSON, or a bad query parameter.
    MalformedProblems {
        "400" => "Malformed JSON or query parameter",
    }
}

problem_set! {
    /// 413, 415 and 422: what a JSON body can get wrong.
    BodyProblems {
        "413" => "Body over the limit",
        "415" => "Content-Type is not JSON",
        "422" => "Invalid or unknown fields, each named",
    }
}

problem_set! {
    /// 409: a unique name taken, or a concurrent write that won.
    ConflictProblems {
        "409" => "Duplicate name or a concurrent write won",
    }
}

problem_set! {
    /// 412: `If-Match` names another revision.
    PreconditionProblems {
        "412" => "If-Match does not match",
    }
}

impl ApiError {
    /// A 400 naming one query parameter.
    pub fn bad_parameter(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest {
            detail: format!("invalid query parameter {name}: {message}"),
            errors: vec![FieldError::new(name, message)],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request header fields too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request body",
            ),
            Self::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service overloaded",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                "the server failed to handle the request; see its log for this request id".into()
            }
            other => other.to_string(),
        };
        let errors: &[FieldError] = match &self {
            Self::Validation(v) => &v.0,
            Self::BadRequest { errors, .. } => errors,
            _ => &[],
        };
        let kind = format!("/problems/{slug}");
        let body = Problem {
            kind: &kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            DbError::Conflict(detail) => Self::Conflict(detail),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".into())
            }
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(e)
    }
}
