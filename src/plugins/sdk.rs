//! Describing AWS SDK errors in one line: shared by the AWS plugin and the S3 backup store,
//! which both talk to AWS through the SDK.

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// An SDK error as its AWS error code and message, else as what went wrong on the way (HTTP
/// status, timeout, connection failure). Never includes credentials.
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => match err {
            SdkError::ServiceError(context) => {
                format!("HTTP {} without an AWS error code", context.raw().status())
            }
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            other => describe_chain(other),
        },
    }
}

/// An error and its sources, each once, joined by `: ` (no debug dumps).
pub fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
