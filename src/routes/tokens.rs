//! `/tokens`: API token management (admin scope).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::JsonBody;
use crate::db::tokens as repo;
use crate::domain::token::{self, ApiToken, Scope, TokenName};
use crate::domain::{FieldError, ValidationErrors};
use crate::middleware::AppState;
use crate::middleware::error::ApiError;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// The body of `POST /tokens`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "documents the request body, which is parsed by parse_request"
)]
pub struct TokenRequest {
    /// Unique name saying who or what uses the token.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    name: String,
    /// What the token may do.
    scope: Scope,
    /// When the token stops working (RFC 3339, in the future); it never expires without one.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// A token request, checked.
pub struct NewTokenRequest {
    /// The name.
    pub name: TokenName,
    /// The scope.
    pub scope: Scope,
    /// When it expires.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// A token just created: its secret, shown this once, and its record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The bearer token. It cannot be shown again.
    pub token: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub record: ApiToken,
}

/// Every token, revoked ones included (never their secrets).
#[utoipa::path(
    get,
    operation_id = "list_tokens",
    path = "/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens", body = Vec<ApiToken>),
        crate::middleware::error::AuthProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(repo::list(&state.db).await?))
}

/// Parses a token request: `{"name": "...", "scope": "read|write|admin", "expires_at": …}`.
pub fn parse_request(body: &Value) -> Result<NewTokenRequest, ValidationErrors> {
    let mut errors = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(ValidationErrors(vec![FieldError::new(
            "",
            "expected a JSON object",
        )]));
    };
    for key in obj.keys() {
        if !["name", "scope", "expires_at"].contains(&key.as_str()) {
            errors.push(FieldError::new(key, "unknown field"));
        }
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) => TokenName::parse(s)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("name", "expected a string"));
            None
        }
    };
    let scope = match obj.get("scope") {
        Some(Value::String(s)) => Scope::parse(s)
            .map_err(|m| errors.push(FieldError::new("scope", m)))
            .ok(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new("scope", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("scope", "expected read, write or admin"));
            None
        }
    };
    let expires_at = match obj.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match token::parse_expiry(s, time::OffsetDateTime::now_utc()) {
            Ok(at) => Some(at),
            Err(m) => {
                errors.push(FieldError::new("expires_at", m));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "expires_at",
                "expected an RFC 3339 date-time such as 2027-01-31T00:00:00Z",
            ));
            None
        }
    };
    match (name, scope) {
        (Some(name), Some(scope)) if errors.is_empty() => Ok(NewTokenRequest {
            name,
            scope,
            expires_at,
        }),
        _ => Err(ValidationErrors(errors)),
    }
}

/// Creates a token; its secret is in this response only.
#[utoipa::path(
    post,
    operation_id = "create_token",
    path = "/tokens",
    tag = "tokens",
    security(("bearer" = [])),
    request_body(content = TokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The token and its record", body = CreatedToken),
        crate::middleware::error::MalformedProblems,
        crate::middleware::error::AuthProblems,
        crate::middleware::error::ConflictProblems,
        crate::middleware::error::BodyProblems,
        crate::middleware::error::DatabaseProblems
    )
)]
async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = parse_request(&body)?;
    let new = token::generate().map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let record = repo::create(
        &state.db,
        request.name.as_str(),
        request.scope,
        &new.hash,
        &new.prefix,
        request.expires_at,
    )
    .await?;
    tracing::info!(token = %record.name, scope = %record.scope, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: new.expose().to_owned(),
            record,
        }),
    )
        .into_response())
}

/// Revokes a token by id or name.
#[utoipa::path(
    delete,
    path = "/tokens/{key}",
    tag = "tokens",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "Token id or name")),
    responses(
        (status = 204, description = "Revoked"),
        crate::middleware::error::AuthProblems,
        (status = 404, description = "No such token", body = crate::middleware::error::Problem, content_type = "application/problem+json"),
        crate::middleware::error::DatabaseProblems
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = repo::revoke(&state.db, &key).await?;
    state.tokens.forget(record.id);
    tracing::info!(token = %record.name, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
