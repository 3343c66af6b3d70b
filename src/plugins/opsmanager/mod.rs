//! MongoDB Ops Manager: a public-API client with HTTP Digest authentication, and lossless,
//! versioned backups of each group's automation configuration.

pub mod backup;
pub mod catalog;
pub mod client;
pub mod diff;
pub mod local_store;
pub mod s3_store;

pub use backup::{
    BackupEntry, BackupLocation, BackupStore, GroupBackup, GroupId, Outcome as BackupOutcome,
};
pub use client::{AutomationConfig, Group, OpsManagerClient};

/// Errors of the Ops Manager plugin.
#[derive(Debug, thiserror::Error)]
pub enum OpsManagerError {
    /// Ops Manager is not configured.
    #[error("Ops Manager is not configured: set {0}")]
    NotConfigured(&'static str),
    /// 401: the API key pair was rejected.
    #[error(
        "Ops Manager rejected the API key {public_key} (HTTP 401): check opsmanager.public_key \
         and opsmanager.private_key{}",
        detail_suffix(detail)
    )]
    Unauthorized {
        /// The public key that was used (not a secret).
        public_key: String,
        /// Ops Manager's own explanation.
        detail: String,
    },
    /// 403: the key is valid but may not do this.
    #[error(
        "Ops Manager refused {what} (HTTP 403): this machine's address may be missing from the \
         API key's access list, or the key lacks the role{}",
        detail_suffix(detail)
    )]
    Forbidden {
        /// The request that was refused.
        what: String,
        /// Ops Manager's own explanation.
        detail: String,
    },
    /// 404: no such group (project).
    #[error("Ops Manager has no group {group} (HTTP 404){}", detail_suffix(detail))]
    GroupNotFound {
        /// The group id asked for.
        group: String,
        /// Ops Manager's own explanation.
        detail: String,
    },
    /// Any other unsuccessful HTTP status, after retries where they apply.
    #[error(
        "Ops Manager answered {what} with HTTP {status}{}",
        detail_suffix(detail)
    )]
    Status {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Ops Manager's own explanation.
        detail: String,
    },
    /// The request could not be sent or the answer not read (after retries).
    #[error("cannot reach Ops Manager for {what}: {cause}")]
    Transport {
        /// The request.
        what: String,
        /// The cause with its own causes, e.g. `… tcp connect error: Connection refused`.
        cause: String,
    },
    /// The answer is not what the public API documents.
    #[error("unexpected answer from Ops Manager for {what}: {message}")]
    Protocol {
        /// The request.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// A group id that cannot be an Ops Manager id.
    #[error("invalid group id {0:?}: expected letters and digits (a 24-character hex id)")]
    InvalidGroupId(String),
    /// A backup file could not be read or written.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// A backup file's content does not match the MD5 in its name.
    #[error("{path}: content MD5 {actual} does not match {expected} in the file name")]
    ChecksumMismatch {
        /// The file.
        path: String,
        /// MD5 from the name.
        expected: String,
        /// MD5 of the content.
        actual: String,
    },
    /// A request to the S3 backup store failed.
    #[error("S3 {operation} of {location} failed: {cause}{}", s3_hint(code.as_deref()))]
    S3 {
        /// The API, e.g. `PutObject`.
        operation: &'static str,
        /// `s3://bucket/key`, or `s3://bucket/prefix` for a listing.
        location: String,
        /// The AWS error code (`NoSuchBucket`, `AccessDenied`, …), else `HTTP 403` and the
        /// like when the answer had no body.
        code: Option<String>,
        /// The code and message AWS returned, or the transport failure.
        cause: String,
    },
    /// An argument meant as an S3 location that is not `s3://BUCKET/KEY`.
    #[error("{0:?} is not an S3 object: expected s3://BUCKET/KEY")]
    InvalidLocation(String),
    /// A file that is not a backup (name or content).
    #[error("{path} is not an automation-config backup: {message}")]
    NotABackup {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// What to check for the S3 errors people meet most.
fn s3_hint(code: Option<&str>) -> &'static str {
    match code.unwrap_or_default() {
        "NoSuchBucket" => " (the bucket does not exist: check backups.s3_bucket and aws.region)",
        "AccessDenied" | "AllAccessDisabled" | "HTTP 403" => {
            " (the credentials may not do this: check the IAM policy for the bucket and prefix)"
        }
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken" => {
            " (check the AWS credentials)"
        }
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "HTTP 301" => {
            " (the bucket is in another region: set aws.region to the bucket's region)"
        }
        _ => "",
    }
}

impl OpsManagerError {
    pub(crate) fn io(what: impl Into<String>, cause: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            cause,
        }
    }

    pub(crate) fn transport(what: impl Into<String>, error: &reqwest::Error) -> Self {
        let mut cause = error.to_string();
        // reqwest names the URL it called, user-info password and query included.
        if let Some(url) = error.url() {
            cause = cause.replace(url.as_str(), &crate::config::redact_url(url.as_str()));
        }
        let mut next = std::error::Error::source(error);
        while let Some(inner) = next {
            let text = inner.to_string();
            if !cause.contains(&text) {
                cause.push_str(": ");
                cause.push_str(&text);
            }
            next = inner.source();
        }
        Self::Transport {
            what: what.into(),
            cause,
        }
    }
}
