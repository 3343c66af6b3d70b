//! The context that belongs to no face: the settings, the database, and the plugin clients and
//! templates, each built once. The CLI, the HTTP service and the actions all work through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell, watch};
use uuid::Uuid;

use crate::config::Settings;
use crate::db::{Db, DbError};
use crate::plugins::aws::{Aws, SharedAws};
use crate::plugins::chef::{ChefClient, ChefError};
use crate::plugins::opsmanager::{BackupStore, OpsManagerClient, OpsManagerError, s3_store};
use crate::render::{RenderError, Templates};

/// Why the context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The database settings cannot be used.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A template override cannot be read or parsed.
    #[error(transparent)]
    Templates(#[from] RenderError),
}

/// The shared context; a clone is one reference-count increment.
#[derive(Debug, Clone)]
pub struct Context(Arc<Shared>);

/// What [`Context`] shares.
#[derive(Debug)]
pub struct Shared {
    /// The validated settings.
    pub settings: Settings,
    /// The database pool.
    pub db: Db,
    /// The report templates (embedded, or overridden from `templates_dir`).
    pub templates: Templates,
    /// Action runs in progress in this process, so shutdown can wait for them or mark them
    /// abandoned.
    pub in_flight: InFlight,
    /// Rule runs in progress in this process, by rule name.
    pub rule_runs: InFlight<String>,
    stopping: watch::Sender<bool>,
    aws: SharedAws,
    backup_store: OnceCell<BackupStore>,
    chef: OnceCell<ChefClient>,
    opsmanager: OnceCell<OpsManagerClient>,
}

impl std::ops::Deref for Context {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Context {
    /// Builds the context from settings. Does not touch the network.
    pub fn new(settings: Settings) -> Result<Self, ContextError> {
        let db = Db::connect(&settings.database)?;
        Self::with_db(settings, db)
    }

    /// Builds the context around a database pool that is already open.
    pub fn with_db(settings: Settings, db: Db) -> Result<Self, ContextError> {
        let templates = Templates::new(settings.templates_dir.as_deref())?;
        Ok(Self(Arc::new(Shared {
            settings,
            db,
            templates,
            in_flight: InFlight::default(),
            rule_runs: InFlight::default(),
            stopping: watch::Sender::new(false),
            aws: SharedAws::default(),
            backup_store: OnceCell::new(),
            chef: OnceCell::new(),
            opsmanager: OnceCell::new(),
        })))
    }

    /// Tells the work in progress that the process is stopping: rule runs start no further
    /// step, schedulers claim no further slot.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the process is stopping, and a way to wait until it is.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The AWS SDK configuration, loaded on first use.
    pub async fn aws(&self) -> &Aws {
        self.aws.get(&self.settings.aws).await
    }

    /// The Chef client of the settings, built on first use.
    pub async fn chef(&self) -> Result<&ChefClient, ChefError> {
        self.chef
            .get_or_try_init(|| async { ChefClient::from_settings(&self.settings.chef) })
            .await
    }

    /// The Ops Manager client of the settings, built on first use.
    pub async fn opsmanager(&self) -> Result<&OpsManagerClient, OpsManagerError> {
        self.opsmanager
            .get_or_try_init(|| async {
                OpsManagerClient::from_settings(&self.settings.opsmanager)
            })
            .await
    }

    /// An S3 client of the AWS configuration.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        s3_store::client(self.aws().await.home_config())
    }

    /// The Ops Manager backup store of the settings, built on first use: the bucket
    /// `backups.s3_bucket` when set, else the folder `backups.dir`.
    pub async fn backup_store(&self) -> &BackupStore {
        self.backup_store
            .get_or_init(|| async {
                let backups = &self.settings.backups;
                match backups.bucket() {
                    None => BackupStore::local(backups.dir.clone()),
                    Some(bucket) => BackupStore::s3(self.s3().await, bucket, &backups.prefix())
                        .protected(backups.s3_expected_owner.clone(), encryption(backups)),
                }
            })
            .await
    }
}

/// How the `[backups]` settings say objects in the bucket are encrypted.
fn encryption(backups: &crate::config::BackupSettings) -> s3_store::Encryption {
    if backups.s3_encryption == "aws:kms" {
        s3_store::Encryption::Kms(backups.s3_kms_key_id.clone().filter(|k| !k.is_empty()))
    } else {
        s3_store::Encryption::S3Managed
    }
}

/// Action runs in progress in this process, each with the task that runs it.
#[derive(Debug)]
pub struct InFlight<L = &'static str> {
    runs: Mutex<HashMap<Uuid, (L, tokio::task::AbortHandle)>>,
    changed: Notify,
}

impl<L> Default for InFlight<L> {
    fn default() -> Self {
        Self {
            runs: Mutex::default(),
            changed: Notify::new(),
        }
    }
}

/// Runs `work` as the task of run `id`, listed in the in-flight list `list` of `ctx` (labelled
/// `label`) from before it starts until it ends, so shutdown can neither miss it nor wait for
/// it once it is done.
pub fn spawn_listed<L, F>(
    ctx: &Context,
    list: fn(&Shared) -> &InFlight<L>,
    id: Uuid,
    label: L,
    work: F,
) where
    L: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let task_ctx = ctx.clone();
    let task = tokio::spawn(async move {
        let _ = go.await;
        work.await;
        list(&task_ctx).remove(id);
    });
    list(ctx).add(id, label, task.abort_handle());
    let _ = go_tx.send(());
}

/// A run that was stopped before it finished: its id and action.
pub type Unfinished = (Uuid, &'static str);

impl<L> InFlight<L> {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (L, tokio::task::AbortHandle)>> {
        // The map is consistent after every single operation.
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, id: Uuid, label: L, task: tokio::task::AbortHandle) {
        self.runs().insert(id, (label, task));
    }

    fn remove(&self, id: Uuid) {
        self.runs().remove(&id);
        self.changed.notify_waiters();
    }

    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        self.runs().len()
    }

    /// Whether no run is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `limit` for every run in progress to finish; stops the ones still running
    /// then and returns them.
    pub async fn drain(&self, limit: Duration) -> Vec<(Uuid, L)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if self.is_empty() {
                return Vec::new();
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let left: Vec<(Uuid, (L, tokio::task::AbortHandle))> = self.runs().drain().collect();
        left.into_iter()
            .map(|(id, (action, task))| {
                task.abort();
                (id, action)
            })
            .collect()
    }
}
