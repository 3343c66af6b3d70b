//! The tracing subscriber: human lines on a terminal, JSON otherwise, on stderr or, for hosts
//! without a log collector, in a log file rotated daily or hourly; and, when configured,
//! spans exported to an OpenTelemetry collector.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// How often a log file is started afresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    /// A new file every day (`FILE.YYYY-MM-DD`).
    #[default]
    Daily,
    /// A new file every hour (`FILE.YYYY-MM-DD-HH`).
    Hourly,
    /// One file, never rotated (rotate it with logrotate's `copytruncate`).
    Never,
}

/// Where log lines go: stderr, or a file.
#[derive(Debug, Clone, Default)]
pub struct LogTarget {
    /// The file (its folder is created); stderr when `None`.
    pub file: Option<std::path::PathBuf>,
    /// How often the file rotates.
    pub rotation: LogRotation,
    /// Rotated files kept; older ones are deleted.
    pub keep_files: usize,
}

/// Keeps a log file's writer thread and the trace exporter alive; dropping it sends the
/// spans and flushes the lines still queued. Drop it outside any async runtime.
pub struct LogGuard {
    _traces: Option<super::telemetry::TelemetryGuard>,
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("cannot open the log file (log.file): {0}")]
    File(#[from] std::io::Error),
    /// The trace exporter could not be built.
    #[error(transparent)]
    Telemetry(#[from] super::telemetry::TelemetryError),
}

/// Installs the global subscriber. `filter` is a tracing directive such as `info`. When
/// `telemetry.otlp_endpoint` is set, spans that pass `telemetry.level` are exported too.
/// Does nothing if a subscriber is already installed (as in tests). Hold the returned guard
/// until the process ends.
pub fn init(
    format: LogFormat,
    filter: &str,
    target: &LogTarget,
    telemetry: &super::TelemetrySettings,
) -> Result<LogGuard, LogError> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let to_terminal = target.file.is_none() && std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !to_terminal,
    };
    let (writer, worker) = writer(target)?;
    let traces = super::telemetry::exporter::<Registry>(telemetry)?;
    let (traces, installed) = match traces {
        // With no exporter the filter stays global: a disabled span or event costs one
        // cached check, as it did before traces existed.
        None => (
            None,
            tracing_subscriber::registry()
                .with(filter)
                .with(lines(writer, json, to_terminal))
                .try_init(),
        ),
        Some((layer, guard)) => {
            let level =
                EnvFilter::try_new(&telemetry.level).unwrap_or_else(|_| EnvFilter::new("info"));
            let installed = tracing_subscriber::registry()
                .with(vec![
                    lines(writer, json, to_terminal).with_filter(filter).boxed(),
                    layer.with_filter(level).boxed(),
                ])
                .try_init();
            (Some(guard), installed)
        }
    };
    // A subscriber installed already (tests) keeps its place, and the exporter goes unused.
    let traces = if installed.is_ok() { traces } else { None };
    Ok(LogGuard {
        _traces: traces,
        _worker: worker,
    })
}

/// The layer that writes log lines, as JSON or for people.
fn lines<S>(writer: BoxMakeWriter, json: bool, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    if json {
        lines
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed()
    } else {
        lines.with_ansi(ansi).compact().boxed()
    }
}

/// The writer of log lines: stderr, or the rotated log file and its writer thread.
fn writer(
    target: &LogTarget,
) -> std::io::Result<(
    BoxMakeWriter,
    Option<tracing_appender::non_blocking::WorkerGuard>,
)> {
    Ok(match &target.file {
        // stderr stays synchronous: a line is out before the next statement runs.
        None => (BoxMakeWriter::new(std::io::stderr), None),
        Some(file) => {
            let folder = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("pincher.log");
            std::fs::create_dir_all(folder)?;
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(match target.rotation {
                    LogRotation::Daily => tracing_appender::rolling::Rotation::DAILY,
                    LogRotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
                    LogRotation::Never => tracing_appender::rolling::Rotation::NEVER,
                })
                .filename_prefix(name)
                .max_log_files(target.keep_files.max(1))
                .build(folder)
                .map_err(std::io::Error::other)?;
            let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            (BoxMakeWriter::new(writer), Some(worker))
        }
    })
}
