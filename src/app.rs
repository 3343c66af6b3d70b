//! The shared context every face of pincher works through: settings and the database.

use std::sync::Arc;

use crossbeam_utils::CachePadded;
use tokio::sync::OnceCell;

use crate::config::Settings;
use crate::db::{Db, DbError};
use crate::health::HealthCache;
use crate::middleware::auth::TokenCache;
use crate::plugins::opsmanager::BackupStore;

/// Settings and shared clients, built once; a clone is one reference-count increment, as
/// every request clones it several times.
///
/// The context sits on cache lines of its own, apart from the reference count that every
/// core writes, so that reading the settings or the pool never waits for a count another
/// core has just written.
#[derive(Debug, Clone)]
pub struct AppState(Arc<CachePadded<Context>>);

/// What [`AppState`] shares.
#[derive(Debug)]
pub struct Context {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// The database pool.
    pub db: Db,
    /// The last `/status` result.
    pub health: Arc<HealthCache>,
    /// Recently verified API tokens.
    pub tokens: Arc<TokenCache>,
    /// The AWS SDK configuration, loaded on first use.
    pub aws: crate::plugins::aws::SharedAws,
    /// HTTP requests being served now (the concurrency limit's count; `/metrics` reports it),
    /// on a cache line of its own: every request writes it twice.
    pub requests_in_service: CachePadded<std::sync::atomic::AtomicUsize>,
    /// Requests waiting with a deadline (the request timeout).
    pub deadlines: crate::middleware::deadline::Deadlines,
    backup_store: OnceCell<BackupStore>,
}

impl std::ops::Deref for AppState {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.0
    }
}

impl AppState {
    /// Builds the context from settings. Does not touch the network.
    pub fn new(settings: Settings) -> Result<Self, DbError> {
        let db = Db::connect(&settings.database)?;
        Ok(Self(Arc::new(CachePadded::new(Context {
            settings: Arc::new(settings),
            db,
            health: Arc::default(),
            tokens: Arc::default(),
            aws: crate::plugins::aws::SharedAws::default(),
            requests_in_service: CachePadded::new(std::sync::atomic::AtomicUsize::new(0)),
            deadlines: crate::middleware::deadline::Deadlines::default(),
            backup_store: OnceCell::new(),
        }))))
    }

    /// The Ops Manager backup store of the settings (folder or S3 bucket), built on first
    /// use.
    pub async fn backup_store(&self) -> &BackupStore {
        self.backup_store
            .get_or_init(|| BackupStore::from_settings_with(&self.settings, &self.aws))
            .await
    }
}
