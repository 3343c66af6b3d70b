//! Bearer-token authentication and scope checks for every request that needs them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use crate::config::AuthMode;
use crate::db::tokens;
use crate::domain::token::{self, ApiToken, Scope};
use crate::metrics::METRICS;
use crate::middleware::AppState;
use crate::middleware::error::ApiError;

/// Most tokens kept in the verified-token cache before it is emptied.
const CACHE_CAPACITY: usize = 10_000;

/// Hashes a SHA-256 digest for the cache's table by folding its 8-byte words together, with
/// no keyed hash: the digest is already uniform, and only verified tokens are ever inserted,
/// so a client cannot steer entries into one bucket.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type Digest = [u8; 32];

type Entries = HashMap<Digest, (ApiToken, Instant), BuildHasherDefault<DigestHasher>>;

/// Recently verified tokens by SHA-256 digest, so most requests need no database round trip.
/// Reads take no lock and write no shared memory (the map is swapped whole on the rare
/// insert), so concurrent requests on different cores do not contend here.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: ArcSwap<Entries>,
}

impl TokenCache {
    /// Checks the cached token with this digest, if one is cached and fresh: `Some` with the
    /// refusal, if any.
    fn check(&self, digest: &Digest, ttl: Duration, needed: Scope) -> Option<Option<Response>> {
        let entries = self.entries.load();
        let (token, _) = entries.get(digest).filter(|(_, at)| at.elapsed() < ttl)?;
        Some(refusal(token, needed))
    }

    /// The name of a cached token, fresh or not.
    fn name_of(&self, digest: &Digest) -> Option<String> {
        self.entries
            .load()
            .get(digest)
            .map(|(token, _)| token.name.clone())
    }

    fn put(&self, digest: Digest, token: ApiToken) {
        self.entries.rcu(|entries| {
            let mut entries = if entries.len() >= CACHE_CAPACITY {
                Entries::default()
            } else {
                Entries::clone(entries)
            };
            entries.insert(digest, (token.clone(), Instant::now()));
            entries
        });
    }

    /// Forgets a token (after it is revoked here).
    pub fn forget(&self, id: uuid::Uuid) {
        self.entries.rcu(|entries| {
            let mut entries = Entries::clone(entries);
            entries.retain(|_, (token, _)| token.id != id);
            entries
        });
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

/// Names a verified token on the request's span; the refusal when its scope is not enough.
fn refusal(token: &ApiToken, needed: Scope) -> Option<Response> {
    tracing::Span::current().record("token", token.name.as_str());
    if token.scope < needed {
        return Some(refuse(
            "scope",
            ApiError::Forbidden(format!(
                "token {:?} has scope {}; this request needs {needed}",
                token.name, token.scope
            )),
            "Bearer realm=\"pincher\", error=\"insufficient_scope\"",
        ));
    }
    None
}

/// What a request's token allows, as far as it can be told without waiting.
pub enum Verdict {
    /// A public endpoint, authentication disabled, or a cached token of sufficient scope.
    Allowed,
    /// The response to send instead.
    Refused(Response),
    /// A token that is not cached: [`look_up`] decides.
    Unknown(Lookup),
}

/// A presented token that is not in the cache, and the scope the request needs.
pub struct Lookup {
    digest: Digest,
    needed: Scope,
}

/// Checks a request's token against the settings and the cache of verified tokens.
pub fn check(state: &AppState, method: &Method, path: &str, headers: &HeaderMap) -> Verdict {
    if state.settings.auth.mode == AuthMode::Disabled {
        return Verdict::Allowed;
    }
    let Some(needed) = required_scope(method, path) else {
        return Verdict::Allowed;
    };
    let Some(presented) = bearer(headers) else {
        return Verdict::Refused(refuse(
            "missing",
            ApiError::Unauthorized("this endpoint needs Authorization: Bearer <token>".into()),
            "Bearer realm=\"pincher\"",
        ));
    };
    let digest = token::digest(presented);
    let ttl = Duration::from_secs(state.settings.auth.token_cache_ttl_secs);
    match state.tokens.check(&digest, ttl, needed) {
        Some(None) => Verdict::Allowed,
        Some(Some(refused)) => Verdict::Refused(refused),
        None => Verdict::Unknown(Lookup { digest, needed }),
    }
}

/// Looks an uncached token up in the database (and caches it when valid): `None` lets the
/// request through, `Some` is the refusal to send instead.
pub async fn look_up(state: &AppState, lookup: Lookup) -> Option<Response> {
    let Lookup { digest, needed } = lookup;
    match tokens::find_active(&state.db, &token::hex(&digest)).await {
        Ok(Some(token)) => {
            let verdict = refusal(&token, needed);
            state.tokens.put(digest, token);
            verdict
        }
        Ok(None) => Some(refuse(
            "invalid",
            ApiError::Unauthorized("the bearer token is not valid or was revoked".into()),
            "Bearer realm=\"pincher\", error=\"invalid_token\"",
        )),
        Err(e) => Some(ApiError::from(e).into_response()),
    }
}

/// Who made a request that got past authentication: its token's name, or `anonymous` when
/// authentication is disabled. For the record of what the request ran.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> String {
    const ANONYMOUS: &str = "anonymous";
    if state.settings.auth.mode == AuthMode::Disabled {
        return ANONYMOUS.into();
    }
    let Some(presented) = bearer(headers) else {
        return ANONYMOUS.into();
    };
    let digest = token::digest(presented);
    if let Some(name) = state.tokens.name_of(&digest) {
        return name;
    }
    match tokens::find_active(&state.db, &token::hex(&digest)).await {
        Ok(Some(token)) => token.name,
        _ => ANONYMOUS.into(),
    }
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
