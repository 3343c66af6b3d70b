//! `pincher serve`: the HTTP service, with graceful shutdown on SIGINT and SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Outcome;
use crate::config::{AuthMode, Settings};
use crate::middleware::AppState;
use crate::routes;
use crate::scheduler;
use crate::server::{self, ConnectionLimits};

/// `pincher serve`
#[derive(Debug, Args)]
pub struct Opts {
    /// Address to bind (overrides `server.host`).
    #[arg(long)]
    host: Option<String>,
    /// Port to bind; 0 picks a free one (overrides `server.port`).
    #[arg(long)]
    port: Option<u16>,
    /// Also run the rules scheduler in this process (as `scheduler.enabled` does).
    #[arg(long)]
    scheduler: bool,
}

/// Longest the database pool may take to close after every request finished.
const DB_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest it may take once the drain timeout gave up on requests still running.
const DB_CLOSE_AFTER_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs the service until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn run(opts: Opts, mut settings: Settings) -> anyhow::Result<Outcome> {
    if let Some(host) = opts.host {
        settings.server.host = host;
    }
    if let Some(port) = opts.port {
        settings.server.port = port;
    }
    if opts.scheduler {
        settings.scheduler.enabled = true;
    }
    settings.validate()?;
    if settings.auth.mode == AuthMode::Disabled {
        let loopback = settings.server.host == "localhost"
            || settings
                .server
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            anyhow::bail!(
                "auth.mode = disabled is for local development only; refusing to serve on {} \
                 (bind to 127.0.0.1 or enable tokens)",
                settings.server.host
            );
        }
        tracing::warn!(
            "AUTHENTICATION IS DISABLED (auth.mode = disabled): anyone who can reach this \
             port can read and change everything. Use it for local development only."
        );
    }
    let drain = Duration::from_secs(settings.server.drain_timeout_secs);
    let address = (settings.server.host.clone(), settings.server.port);
    let state = AppState::new(settings)?;
    prepare_database(&state).await?;

    let listener = TcpListener::bind(address.clone())
        .await
        .with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
    let local = listener.local_addr()?;
    let signalled = shutdown_signal();
    tracing::info!(address = %local, backend = ?state.db.backend(), "listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut drain_rx = stop_tx.subscribe();
    let stopping = stop_tx.subscribe();
    if let Some(metrics_address) = state.settings.metrics.listen.clone() {
        let listener = TcpListener::bind(&metrics_address)
            .await
            .with_context(|| format!("cannot listen on {metrics_address} (metrics.listen)"))?;
        tracing::info!(address = %listener.local_addr()?, "serving /metrics");
        let app = routes::metrics::standalone(state.clone());
        let limits = ConnectionLimits::from_settings(&state.settings.server);
        tokio::spawn(server::serve(
            listener,
            move || app.clone(),
            limits,
            stop_tx.subscribe(),
        ));
    }
    if state.settings.scheduler.enabled {
        tokio::spawn(scheduler::run(state.app.clone(), scheduler::replica_name()));
    }
    let app = routes::router(state.clone());
    let limits = ConnectionLimits::from_settings(&state.settings.server);
    let mut server = tokio::spawn(async move {
        server::serve(listener, move || app.connection(), limits, stop_rx).await;
        Ok::<(), std::io::Error>(())
    });
    tokio::spawn(async move {
        signalled.await;
        let _ = stop_tx.send(true);
    });
    let quiet = Duration::from_secs(state.settings.server.page_out_after_quiet_secs);
    if !quiet.is_zero() {
        tokio::spawn(page_out_code(quiet));
    }

    // The server's result when it ended before the drain began: on its own (an error), or
    // because the stop it was sent finished it at once (no request in flight), in which case
    // the drain below must still run for the action runs and the database.
    let mut ended = None;
    tokio::select! {
        result = &mut server => {
            if !*stopping.borrow() {
                result.context("the server task failed")?.context("the server failed")?;
                return Ok(Outcome::Success);
            }
            ended = Some(result);
        }
        _ = drain_rx.wait_for(|stop| *stop) => {}
    }
    tracing::info!(
        drain_timeout_secs = drain.as_secs(),
        runs = state.in_flight.len(),
        "shutting down; finishing in-flight requests and action runs"
    );
    let deadline = tokio::time::Instant::now() + drain;
    let served = match ended {
        Some(result) => Ok(result),
        None => tokio::time::timeout(drain, &mut server).await,
    };
    let close_within = match served {
        Ok(result) => {
            result
                .context("the server task failed")?
                .context("the server failed")?;
            DB_CLOSE_TIMEOUT
        }
        Err(_) => {
            tracing::warn!("drain timeout reached; closing the remaining connections");
            server.abort();
            DB_CLOSE_AFTER_DRAIN_TIMEOUT
        }
    };
    // Action and rule runs go on past their requests; they get what is left of the drain
    // timeout, and the ones still running then are stopped and recorded as abandoned, never
    // left running.
    scheduler::drain(&state.app, deadline).await;
    // Connections still held by requests the drain gave up on (or by background work) would
    // keep the pool from closing; the process does not wait for them past this bound.
    if tokio::time::timeout(close_within, state.db.close())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?close_within,
            "database connections still in use; exiting without closing them"
        );
    }
    tracing::info!("stopped");
    Ok(Outcome::Success)
}

/// Applies migrations when configured. A database that is down does not stop the service
/// from starting: readiness reports it, and migrations are retried until they succeed.
async fn prepare_database(state: &AppState) -> anyhow::Result<()> {
    if !state.settings.database.migrate_on_start {
        return Ok(());
    }
    match state.db.migrate().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "database unavailable at start; retrying migrations in the background");
            let db = state.db.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(500);
                loop {
                    tokio::time::sleep(delay).await;
                    match db.migrate().await {
                        Ok(()) => {
                            tracing::info!("database reachable; migrations applied");
                            break;
                        }
                        Err(e) => tracing::warn!(error = %e, "migrations still failing"),
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            });
            Ok(())
        }
        Err(e) => Err(e).context("cannot apply database migrations"),
    }
}

/// Catches SIGINT and SIGTERM from the moment it is called (so a signal sent as soon as the
/// process says it is ready is not fatal), and returns a future that waits for either and
/// logs which. Call it inside the runtime.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(interrupt) => tracing::info!("received SIGINT"),
                () = received(terminate) => tracing::info!("received SIGTERM"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("received Ctrl-C");
    }
}

/// Pages out serve's code now that it listens, and once more after the first requests, when
/// none has come for `quiet`: they run code that runs once per process (lazy set-up on the
/// request path, the first use of the router and of the metrics).
async fn page_out_code(quiet: Duration) {
    page_out("start-up").await;
    let mut seen = 0;
    loop {
        tokio::time::sleep(quiet).await;
        let served = crate::metrics::METRICS.http_requests_served();
        if served > 0 && served == seen {
            break;
        }
        seen = served;
    }
    page_out("the first requests").await;
}

async fn page_out(after: &'static str) {
    match tokio::task::spawn_blocking(crate::cli::memory::page_out_code).await {
        Ok(bytes) => tracing::debug!(bytes, after, "paged out code"),
        Err(e) => tracing::debug!(error = %e, "paging out code failed"),
    }
}
