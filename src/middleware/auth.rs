//! Bearer-token authentication and scope checks for every request that needs them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::config::AuthMode;
use crate::db::tokens;
use crate::domain::token::{self, ApiToken, Scope};
use crate::metrics::METRICS;
use crate::routes::error::ApiError;

/// Most tokens kept in the verified-token cache before it is emptied.
const CACHE_CAPACITY: usize = 10_000;

/// Recently verified tokens by hash, so most requests need no database round trip.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, (Arc<ApiToken>, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str, ttl: Duration) -> Option<Arc<ApiToken>> {
        let entries = self.entries.read().ok()?;
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(token, _)| Arc::clone(token))
    }

    fn put(&self, hash: String, token: Arc<ApiToken>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(hash, (token, Instant::now()));
        }
    }

    /// Forgets a token (after it is revoked here).
    pub fn forget(&self, id: uuid::Uuid) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (token, _)| token.id != id);
        }
    }
}

/// The scope a request needs, or `None` for the public endpoints: the probes, `GET /`,
/// `/openapi.json` and `/metrics` (which has its own optional token).
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    let public = path == "/status"
        || path.starts_with("/status/")
        || path == "/metrics"
        || path == "/openapi.json"
        || (path == "/" && (method == Method::GET || method == Method::HEAD));
    if public {
        None
    } else if path == "/tokens" || path.starts_with("/tokens/") {
        Some(Scope::Admin)
    } else if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn refuse(reason: &'static str, error: ApiError, challenge: &'static str) -> Response {
    METRICS.auth_failures.with_label_values(&[reason]).inc();
    tracing::info!(reason, "request refused by authentication");
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Lets a request through only with a valid token of a sufficient scope.
pub async fn require_token(state: &AppState, mut request: Request, next: Next) -> Response {
    if state.settings.auth.mode == AuthMode::Disabled {
        return next.run(request).await;
    }
    let Some(needed) = required_scope(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let Some(presented) = bearer(request.headers()) else {
        return refuse(
            "missing",
            ApiError::Unauthorized("this endpoint needs Authorization: Bearer <token>".into()),
            "Bearer realm=\"pincher\"",
        );
    };
    let hash = token::hash(presented);
    let ttl = Duration::from_secs(state.settings.auth.token_cache_ttl_secs);
    let found = match state.tokens.get(&hash, ttl) {
        Some(token) => Some(token),
        None => match tokens::find_active(&state.db, &hash).await {
            Ok(Some(token)) => {
                let token = Arc::new(token);
                state.tokens.put(hash, Arc::clone(&token));
                Some(token)
            }
            Ok(None) => None,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let Some(token) = found else {
        return refuse(
            "invalid",
            ApiError::Unauthorized("the bearer token is not valid or was revoked".into()),
            "Bearer realm=\"pincher\", error=\"invalid_token\"",
        );
    };
    if token.scope < needed {
        return refuse(
            "scope",
            ApiError::Forbidden(format!(
                "token {:?} has scope {}; this request needs {needed}",
                token.name, token.scope
            )),
            "Bearer realm=\"pincher\", error=\"insufficient_scope\"",
        );
    }
    tracing::Span::current().record("token", token.name.as_str());
    request.extensions_mut().insert(token);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_method_and_path() {
        assert_eq!(required_scope(&Method::GET, "/"), None);
        assert_eq!(required_scope(&Method::POST, "/"), Some(Scope::Write));
        assert_eq!(required_scope(&Method::GET, "/status/ready"), None);
        assert_eq!(required_scope(&Method::GET, "/metrics"), None);
        assert_eq!(required_scope(&Method::GET, "/services"), Some(Scope::Read));
        assert_eq!(
            required_scope(&Method::PATCH, "/services/x"),
            Some(Scope::Write)
        );
        assert_eq!(required_scope(&Method::GET, "/tokens"), Some(Scope::Admin));
        assert_eq!(required_scope(&Method::GET, "/statusx"), Some(Scope::Read));
    }
}
