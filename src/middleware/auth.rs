//! Bearer-token authentication and scope checks for every request that needs them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::config::AuthMode;
use crate::db::tokens;
use crate::domain::token::{self, ApiToken, Scope};
use crate::metrics::METRICS;
use crate::middleware::AppState;
use crate::middleware::error::ApiError;

/// Most tokens kept in the verified-token (and refused-token) cache before it is emptied.
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

/// Recently verified tokens by SHA-256 digest, so most requests need no database round trip;
/// and recently refused ones, so repeating a bad token does not reach the database either.
///
/// Reads of verified tokens take no lock and write no shared memory (the map is swapped whole
/// on the rare insert), so concurrent requests on different cores do not contend here. The
/// refused tokens sit behind a mutex: only requests that already failed take it.
#[derive(Debug)]
pub struct TokenCache {
    entries: ArcSwap<Entries>,
    refused: Mutex<HashMap<Digest, Instant, BuildHasherDefault<DigestHasher>>>,
    /// Bumped by every revocation: a lookup that began before one does not cache its result,
    /// so a token revoked while it was being looked up cannot come back.
    generation: AtomicU64,
    /// Bounds the database lookups in flight, whatever the number of unknown tokens sent.
    lookups: Semaphore,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(DEFAULT_LOOKUPS)
    }
}

/// Database lookups of unknown tokens in flight at once, unless configured.
const DEFAULT_LOOKUPS: usize = 4;

impl TokenCache {
    /// An empty cache allowing `lookups` database lookups at once.
    pub fn new(lookups: usize) -> Self {
        Self {
            entries: ArcSwap::default(),
            refused: Mutex::default(),
            generation: AtomicU64::new(0),
            lookups: Semaphore::new(lookups.max(1)),
        }
    }

    /// Checks the cached token with this digest, if one is cached and fresh: `Some` with the
    /// refusal, if any.
    fn check(&self, digest: &Digest, ttl: Duration, needed: Scope) -> Option<Option<Response>> {
        let entries = self.entries.load();
        let (token, _) = entries.get(digest).filter(|(_, at)| at.elapsed() < ttl)?;
        if token.expires_at.is_some() && token.expired(time::OffsetDateTime::now_utc()) {
            return Some(Some(invalid_token()));
        }
        Some(refusal(token, needed))
    }

    /// The cached token with this digest, if cached less than `ttl` ago.
    fn fresh(&self, digest: &Digest, ttl: Duration) -> Option<ApiToken> {
        let entries = self.entries.load();
        let (token, _) = entries.get(digest).filter(|(_, at)| at.elapsed() < ttl)?;
        Some(token.clone())
    }

    /// Whether this digest was refused less than `ttl` ago.
    fn recently_refused(&self, digest: &Digest, ttl: Duration) -> bool {
        self.refused
            .lock()
            .map(|refused| refused.get(digest).is_some_and(|at| at.elapsed() < ttl))
            .unwrap_or(false)
    }

    fn refuse(&self, digest: Digest, ttl: Duration) {
        if let Ok(mut refused) = self.refused.lock() {
            if refused.len() >= CACHE_CAPACITY {
                refused.retain(|_, at| at.elapsed() < ttl);
                if refused.len() >= CACHE_CAPACITY {
                    refused.clear();
                }
            }
            refused.insert(digest, Instant::now());
        }
    }

    /// The name of a cached token, fresh or not.
    fn name_of(&self, digest: &Digest) -> Option<String> {
        self.entries
            .load()
            .get(digest)
            .map(|(token, _)| token.name.clone())
    }

    /// Caches a verified token, unless a revocation happened since `generation` was read.
    fn put(&self, digest: Digest, token: ApiToken, generation: u64) {
        self.entries.rcu(|entries| {
            if self.generation.load(Ordering::Acquire) != generation {
                return Arc::clone(entries);
            }
            let mut entries = if entries.len() >= CACHE_CAPACITY {
                Entries::default()
            } else {
                Entries::clone(entries)
            };
            entries.insert(digest, (token.clone(), Instant::now()));
            Arc::new(entries)
        });
    }

    /// Forgets a token (after it is revoked here), and keeps lookups already under way from
    /// caching it again.
    pub fn forget(&self, id: uuid::Uuid) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.rcu(|entries| {
            let mut entries = Entries::clone(entries);
            entries.retain(|_, (token, _)| token.id != id);
            entries
        });
    }
}

fn invalid_token() -> Response {
    refuse(
        "invalid",
        ApiError::Unauthorized("the bearer token is not valid, expired or was revoked".into()),
        "Bearer realm=\"pincher\", error=\"invalid_token\"",
    )
}

/// The cookie a browser keeps its API token in after logging in to the dashboard.
pub const SESSION_COOKIE: &str = "pincher_token";

/// The scope a request needs, or `None` for the public endpoints: the probes, `GET /`,
/// `/openapi.json`, `/metrics` (which has its own optional token) and the login and logout
/// forms.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    let public = path == "/status"
        || path.starts_with("/status/")
        || path == "/metrics"
        || path == "/openapi.json"
        || path == "/login"
        || path == "/logout"
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

/// The value of cookie `name`, if the request sends it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether the dashboard's session cookie may stand in for a bearer token: on reads, and on
/// the dashboard's own forms, which each check a CSRF token ([`csrf_token`]).
fn cookie_allowed(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) || path.starts_with("/dashboard/")
}

/// The token a request presents: its bearer token, else its session cookie where that is
/// allowed.
fn presented<'h>(method: &Method, path: &str, headers: &'h HeaderMap) -> Option<&'h str> {
    bearer(headers).or_else(|| {
        cookie_allowed(method, path)
            .then(|| cookie(headers, SESSION_COOKIE))
            .flatten()
    })
}

/// Whether a request comes from a browser page rather than an API client.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The CSRF token of the dashboard's forms for a session: an HMAC of a fixed label keyed by
/// the session's API token, so every replica derives the same one and no page of another
/// site can know it.
pub fn csrf_token(token: &str) -> String {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(b"pincher dashboard form");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `sent` is the CSRF token of the session `token`, compared in constant time.
pub fn csrf_valid(token: &str, sent: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = csrf_token(token);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
}

/// The verified token of a browser session (its cookie), if it has a valid one.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Option<(ApiToken, String)> {
    let presented = cookie(headers, SESSION_COOKIE)?;
    let token = verify(state, presented).await?;
    Some((token, presented.to_owned()))
}

/// The active, unexpired token `presented` is, looked up as a bearer token is ([`find`]:
/// cached, refusals remembered, lookups bounded).
pub async fn verify(state: &AppState, presented: &str) -> Option<ApiToken> {
    if !token::well_formed(presented) {
        return None;
    }
    let token = find(state, token::digest(presented)).await.ok().flatten()?;
    (!expired(&token)).then_some(token)
}

/// Sends a browser without a token to the login form, to come back to `path` after.
pub fn to_login(path: &str, query: Option<&str>) -> Response {
    let back = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    (
        axum::http::StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/login?next={next}"))],
    )
        .into_response()
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
pub fn check(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Verdict {
    let path = uri.path();
    if state.settings.auth.mode == AuthMode::Disabled {
        return Verdict::Allowed;
    }
    let Some(needed) = required_scope(method, path) else {
        return Verdict::Allowed;
    };
    if state.settings.dashboard.public
        && needed == Scope::Read
        && path.starts_with("/dashboard/")
        && presented(method, path, headers).is_none()
    {
        return Verdict::Allowed;
    }
    let Some(presented) = presented(method, path, headers) else {
        if *method == Method::GET && wants_html(headers) {
            return Verdict::Refused(to_login(path, uri.query()));
        }
        return Verdict::Refused(refuse(
            "missing",
            ApiError::Unauthorized("this endpoint needs Authorization: Bearer <token>".into()),
            "Bearer realm=\"pincher\"",
        ));
    };
    if !token::well_formed(presented) {
        return Verdict::Refused(invalid_token());
    }
    let digest = token::digest(presented);
    let ttl = Duration::from_secs(state.settings.auth.token_cache_ttl_secs);
    match state.tokens.check(&digest, ttl, needed) {
        Some(None) => Verdict::Allowed,
        Some(Some(refused)) => Verdict::Refused(refused),
        None if state.tokens.recently_refused(&digest, negative_ttl(state)) => {
            Verdict::Refused(invalid_token())
        }
        None => Verdict::Unknown(Lookup { digest, needed }),
    }
}

fn negative_ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.auth.negative_cache_secs)
}

/// Looks an uncached token up in the database (and caches the answer): `None` lets the
/// request through, `Some` is the refusal to send instead. At most
/// `auth.max_concurrent_lookups` lookups run at once; the others wait for their turn, within
/// the request timeout.
pub async fn look_up(state: &AppState, lookup: Lookup) -> Option<Response> {
    let Lookup { digest, needed } = lookup;
    match find(state, digest).await {
        Ok(Some(token)) if expired(&token) => Some(invalid_token()),
        Ok(Some(token)) => refusal(&token, needed),
        Ok(None) => Some(invalid_token()),
        Err(e) => Some(e.into_response()),
    }
}

fn expired(token: &ApiToken) -> bool {
    token.expires_at.is_some() && token.expired(time::OffsetDateTime::now_utc())
}

/// The active token with `digest`: the cached one, else (unless it was refused lately) the
/// database's, with at most `auth.max_concurrent_lookups` lookups at once. Either answer is
/// cached.
async fn find(state: &AppState, digest: Digest) -> Result<Option<ApiToken>, ApiError> {
    let ttl = Duration::from_secs(state.settings.auth.token_cache_ttl_secs);
    let cached = |state: &AppState| {
        if state.tokens.recently_refused(&digest, negative_ttl(state)) {
            return Some(None);
        }
        state.tokens.fresh(&digest, ttl).map(Some)
    };
    if let Some(known) = cached(state) {
        return Ok(known);
    }
    let Ok(_turn) = state.tokens.lookups.acquire().await else {
        return Err(ApiError::Unavailable("token lookups are closed".into()));
    };
    // Another request may have looked the same token up while this one waited.
    if let Some(known) = cached(state) {
        return Ok(known);
    }
    let generation = state.tokens.generation.load(Ordering::Acquire);
    let found = tokens::find_active(&state.db, &token::hex(&digest)).await;
    let result = match &found {
        Ok(Some(_)) => "found",
        Ok(None) => "unknown",
        Err(_) => "error",
    };
    METRICS.token_lookups.with_label_values(&[result]).inc();
    match found {
        Ok(Some(token)) => {
            state.tokens.put(digest, token.clone(), generation);
            Ok(Some(token))
        }
        Ok(None) => {
            state.tokens.refuse(digest, negative_ttl(state));
            Ok(None)
        }
        Err(e) => Err(ApiError::from(e)),
    }
}

/// Who made a request that got past authentication: its token's name, or `anonymous` when
/// authentication is disabled. For the record of what the request ran.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> String {
    const ANONYMOUS: &str = "anonymous";
    if state.settings.auth.mode == AuthMode::Disabled {
        return ANONYMOUS.into();
    }
    let Some(presented) = bearer(headers).or_else(|| cookie(headers, SESSION_COOKIE)) else {
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

    fn token(id: uuid::Uuid) -> ApiToken {
        ApiToken {
            id,
            name: "t".into(),
            scope: Scope::Read,
            prefix: "pincher_abcdef".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_cached() {
        let cache = TokenCache::new(1);
        let id = uuid::Uuid::new_v4();
        let ttl = Duration::from_secs(60);
        let before = cache.generation.load(Ordering::Acquire);
        cache.forget(id);
        cache.put([1; 32], token(id), before);
        assert!(cache.check(&[1; 32], ttl, Scope::Read).is_none());
        let now = cache.generation.load(Ordering::Acquire);
        cache.put([1; 32], token(id), now);
        assert!(matches!(
            cache.check(&[1; 32], ttl, Scope::Read),
            Some(None)
        ));
    }

    #[test]
    fn expired_cached_tokens_are_refused() {
        let cache = TokenCache::new(1);
        let mut expired = token(uuid::Uuid::new_v4());
        expired.expires_at = Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(1));
        cache.put([2; 32], expired, 0);
        assert!(matches!(
            cache.check(&[2; 32], Duration::from_secs(60), Scope::Read),
            Some(Some(_))
        ));
    }

    #[test]
    fn refused_tokens_are_remembered_for_a_while() {
        let cache = TokenCache::new(1);
        assert!(!cache.recently_refused(&[3; 32], Duration::from_secs(10)));
        cache.refuse([3; 32], Duration::from_secs(10));
        assert!(cache.recently_refused(&[3; 32], Duration::from_secs(10)));
        assert!(!cache.recently_refused(&[3; 32], Duration::ZERO));
    }

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
