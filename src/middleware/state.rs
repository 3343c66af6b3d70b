//! The HTTP service's state: the shared [`Context`] plus what only the HTTP face needs — the
//! verified-token cache, the request deadlines, the count of requests in service and the
//! cached `/status` result.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crossbeam_utils::CachePadded;

use crate::app::{Context, ContextError};
use crate::config::Settings;
use crate::health::HealthCache;
use crate::middleware::auth::TokenCache;
use crate::middleware::deadline::Deadlines;

/// The state every handler takes; a clone is one reference-count increment, as every request
/// clones it several times.
///
/// The state sits on cache lines of its own, apart from the reference count that every core
/// writes, so that reading the settings or the pool never waits for a count another core has
/// just written.
#[derive(Debug, Clone)]
pub struct AppState(Arc<CachePadded<HttpContext>>);

/// What [`AppState`] shares. Derefs to the [`Context`], so `state.settings` and `state.db`
/// read through.
#[derive(Debug)]
pub struct HttpContext {
    /// The context shared with the other faces.
    pub app: Context,
    /// The last `/status` result.
    pub health: HealthCache,
    /// Recently verified API tokens.
    pub tokens: TokenCache,
    /// HTTP requests being served now (the concurrency limit's count; `/metrics` reports it),
    /// on a cache line of its own: every request writes it twice.
    pub requests_in_service: CachePadded<AtomicUsize>,
    /// Requests waiting with a deadline (the request timeout).
    pub deadlines: Deadlines,
    /// The dashboard's Cost Explorer figures.
    pub costs: crate::dashboard::CostCache,
}

impl std::ops::Deref for AppState {
    type Target = HttpContext;

    fn deref(&self) -> &HttpContext {
        &self.0
    }
}

impl std::ops::Deref for HttpContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.app
    }
}

impl AppState {
    /// Builds the state from settings. Does not touch the network.
    pub fn new(settings: Settings) -> Result<Self, ContextError> {
        Ok(Self::from_context(Context::new(settings)?))
    }

    /// The HTTP state around a context.
    pub fn from_context(app: Context) -> Self {
        let lookups = app.settings.auth.max_concurrent_lookups;
        Self(Arc::new(CachePadded::new(HttpContext {
            app,
            health: HealthCache::default(),
            tokens: TokenCache::new(lookups),
            requests_in_service: CachePadded::new(AtomicUsize::new(0)),
            deadlines: Deadlines::default(),
            costs: crate::dashboard::CostCache::default(),
        })))
    }
}
