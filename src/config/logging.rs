//! The tracing subscriber: human lines on a terminal, JSON otherwise, on stderr or, for hosts
//! without a log collector, in a log file rotated daily or hourly.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

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

/// Keeps a log file's writer thread alive; dropping it flushes the lines still queued.
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global subscriber. `filter` is a tracing directive such as `info`.
/// Does nothing if a subscriber is already installed (as in tests). Hold the returned guard
/// until the process ends. A log file that cannot be opened is an error.
pub fn init(format: LogFormat, filter: &str, target: &LogTarget) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let to_terminal = target.file.is_none() && std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !to_terminal,
    };
    let (writer, worker) = match &target.file {
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
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_ansi(to_terminal).compact().try_init()
    };
    Ok(LogGuard { _worker: worker })
}
