//! What the plugins' own HTTP clients (Ops Manager, Chef) share: redirects that never leave
//! the host the request was signed for, and response bodies read up to a size cap.

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// Follows redirects only to the same scheme, host and port: a signed request's
/// `Authorization` and signature headers must never be sent to another server.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.stop();
        };
        let same = first.scheme() == attempt.url().scheme()
            && first.host_str() == attempt.url().host_str()
            && first.port_or_known_default() == attempt.url().port_or_known_default();
        if !same {
            let to = attempt.url().origin().ascii_serialization();
            attempt.error(format!("refused a redirect to another server ({to})"))
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed.
    Transport(reqwest::Error),
    /// The body is larger than the cap.
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

/// Reads `response`'s body, refusing it as soon as it passes `limit` bytes (before reading
/// anything when `Content-Length` says so), so a hostile server cannot exhaust memory.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
