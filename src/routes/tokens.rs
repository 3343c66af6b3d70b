//! `/tokens`: API token management (admin scope).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;
use super::extract::JsonBody;
use crate::app::AppState;
use crate::db::tokens as repo;
use crate::domain::token::{self, ApiToken, Scope};
use crate::domain::{FieldError, ValidationErrors};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{key}", delete(revoke))
}

/// A token just created: its secret, shown this once, and its record.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    /// The bearer token. It cannot be shown again.
    pub token: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub record: ApiToken,
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(repo::list(&state.db).await?))
}

/// Parses a token request: `{"name": "...", "scope": "read|write|admin"}`.
pub fn parse_request(body: &Value) -> Result<(String, Scope), ValidationErrors> {
    let mut errors = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(ValidationErrors(vec![FieldError::new(
            "",
            "expected a JSON object",
        )]));
    };
    for key in obj.keys() {
        if key != "name" && key != "scope" {
            errors.push(FieldError::new(key, "unknown field"));
        }
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(FieldError::new("name", "must be 1 to 128 characters"));
            None
        }
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
    match (name, scope) {
        (Some(name), Some(scope)) if errors.is_empty() => Ok((name, scope)),
        _ => Err(ValidationErrors(errors)),
    }
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let (name, scope) = parse_request(&body)?;
    let new = token::generate().map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let record = repo::create(&state.db, &name, scope, &new.hash, &new.prefix).await?;
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

async fn revoke(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = repo::revoke(&state.db, &key).await?;
    state.tokens.forget(record.id);
    tracing::info!(token = %record.name, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
