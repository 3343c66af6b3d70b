//! The HTTP listener: accepts connections up to a cap, serves each with hyper (HTTP/1.1 and
//! HTTP/2) under a header-read timeout and an idle timeout, and on shutdown closes idle
//! connections at once and lets busy ones finish their requests.
//!
//! `axum::serve` has none of these bounds: a client that sends its headers one byte a minute,
//! or opens connections and sends nothing, would hold them for ever.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::config::ServerSettings;

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers, counted from when the server
    /// starts waiting for them: on a new connection, and between requests on a kept-alive
    /// HTTP/1 connection (which is closed when it runs out).
    pub header_read_timeout: Duration,
    /// A connection on which nothing was read or written for this long is closed once its
    /// requests in flight are answered (HTTP/2 connections included).
    pub idle_timeout: Duration,
    /// Most connections open at once; further clients wait in the listen backlog until one
    /// closes.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits the `[server]` settings give.
    pub fn from_settings(server: &ServerSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            max_connections: server.max_connections,
        }
    }
}

/// Serves connections from `listener` with a service `make` builds for each, until `stop`
/// turns true; then stops accepting, closes idle connections, and returns when every
/// connection has finished.
pub async fn serve<M, S>(
    listener: TcpListener,
    make: M,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) where
    M: Fn() -> S + Send + 'static,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = stopped(&mut stop) => break,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = make();
        let builder = builder.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(
                stream,
                service,
                &builder,
                limits.header_read_timeout,
                limits.idle_timeout,
                stop,
            )
            .await;
            drop(slot);
        });
    }
    // New clients are refused at once from here on, rather than left in the backlog.
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection<S>(
    stream: TcpStream,
    service: S,
    builder: &auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let stream = Watched::new(stream);
    let activity = stream.activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut service = service.clone();
        service.call(request.map(Body::new))
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        // Until the first byte arrives the protocol is not known yet, and hyper's header
        // timer has not started: the header-read timeout bounds that wait too.
        let timeout = if activity.read_any.load(Ordering::Relaxed) {
            idle_timeout
        } else {
            idle_timeout.min(header_read_timeout)
        };
        let idle_check = tokio::time::sleep(activity.time_left(timeout));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopped(&mut stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = idle_check, if !closing => {
                if activity.time_left(timeout).is_zero() {
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// When a connection last read or wrote a byte.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened`.
    last: AtomicU64,
    /// Whether any byte was read.
    read_any: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// How much of `timeout` is left since the last byte.
    fn time_left(&self, timeout: Duration) -> Duration {
        let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
        timeout.saturating_sub(last.elapsed())
    }
}

/// A stream that records its [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            activity: Arc::new(Activity {
                opened: Instant::now(),
                last: AtomicU64::new(0),
                read_any: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
            self.activity.read_any.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
