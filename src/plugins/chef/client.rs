//! The Chef Server API client: every request is signed as mixlib-authentication defines it
//! (protocol 1.3 with SHA-256 by default; 1.1 and 1.0 with SHA-1 for old servers).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
pub use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePrivateKey as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use url::Url;

use super::ChefError;
use crate::config::telemetry;
use crate::config::{ChefSettings, redact_url};
use crate::plugins::http::{BodyError, read_body, same_origin_redirects};
use crate::plugins::observe;

/// The Chef client version pincher announces in `X-Chef-Version`.
pub const CHEF_CLIENT_VERSION: &str = "18.0.0";
/// The Chef Server API version pincher asks for in `X-Ops-Server-API-Version`.
pub const SERVER_API_VERSION: &str = "1";
/// Longest signature line, as Ruby's `Base64.encode64` breaks it.
const AUTHORIZATION_LINE_LEN: usize = 60;

/// A signing protocol version of mixlib-authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignVersion {
    /// SHA-1 hashes, the canonical string encrypted with the private key, user id in clear.
    V1_0,
    /// As 1.0, with the user id hashed in the canonical string.
    V1_1,
    /// SHA-256, an RSA PKCS#1 v1.5 signature over the canonical request.
    V1_3,
}

impl SignVersion {
    /// Parses `1.0`, `1.1` or `1.3`.
    pub fn parse(text: &str) -> Result<Self, ChefError> {
        match text {
            "1.0" => Ok(Self::V1_0),
            "1.1" => Ok(Self::V1_1),
            "1.3" => Ok(Self::V1_3),
            other => Err(ChefError::Settings {
                key: "chef.sign_version",
                message: format!("expected 1.3, 1.1 or 1.0, got {other:?}"),
            }),
        }
    }

    /// The version as written in `X-Ops-Sign`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0",
            Self::V1_1 => "1.1",
            Self::V1_3 => "1.3",
        }
    }

    /// The hash algorithm of this version.
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::V1_0 | Self::V1_1 => "sha1",
            Self::V1_3 => "sha256",
        }
    }

    /// Base64 of the hash of `data` with this version's algorithm.
    pub fn hash_base64(self, data: &[u8]) -> String {
        match self {
            Self::V1_0 | Self::V1_1 => BASE64.encode(Sha1::digest(data)),
            Self::V1_3 => BASE64.encode(Sha256::digest(data)),
        }
    }
}

impl std::fmt::Display for SignVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client's RSA private key. It is never shown: `Debug` prints a placeholder.
#[derive(Clone)]
pub struct ClientKey(Arc<RsaPrivateKey>);

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey([redacted])")
    }
}

impl ClientKey {
    /// Parses a PEM private key, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE
    /// KEY`). `origin` names where it came from in errors.
    pub fn from_pem(pem: &SecretString, origin: &str) -> Result<Self, ChefError> {
        let text = pem.expose_secret().trim();
        let key = if text.contains("BEGIN RSA PRIVATE KEY") {
            RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| e.to_string())
        } else if text.contains("BEGIN PRIVATE KEY") {
            RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| e.to_string())
        } else {
            Err(
                "expected a PEM RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
                    .into(),
            )
        };
        key.map(|k| Self(Arc::new(k)))
            .map_err(|reason| ChefError::Key {
                path: origin.to_owned(),
                reason,
            })
    }

    /// Reads and parses a PEM key file, warning when other users may read it.
    pub fn read(path: &Path) -> Result<Self, ChefError> {
        let origin = path.display().to_string();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %origin,
                    "the Chef client key is readable by other users; chmod 600 it"
                );
            }
        }
        let pem = std::fs::read_to_string(path)
            .map(SecretString::from)
            .map_err(|e| ChefError::Key {
                path: origin.clone(),
                reason: e.to_string(),
            })?;
        Self::from_pem(&pem, &origin)
    }
}

/// What one request signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// Request path (a query string, if any, is ignored).
    pub path: &'a str,
    /// Request body (empty for none).
    pub body: &'a [u8],
    /// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
    pub timestamp: &'a str,
    /// Client or user name.
    pub user_id: &'a str,
    /// Value of `X-Ops-Server-API-Version` (only 1.3 signs it).
    pub server_api_version: &'a str,
}

/// The path as signed: no query, runs of `/` collapsed, no trailing `/` (unless it is `/`).
pub fn canonical_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical request string that `version` signs.
pub fn canonical_request(version: SignVersion, input: &SigningInput<'_>) -> String {
    let method = input.method.to_ascii_uppercase();
    let path = canonical_path(input.path);
    let content_hash = version.hash_base64(input.body);
    match version {
        SignVersion::V1_3 => format!(
            "Method:{method}\nPath:{path}\nX-Ops-Content-Hash:{content_hash}\n\
             X-Ops-Sign:version=1.3\nX-Ops-Timestamp:{}\nX-Ops-UserId:{}\n\
             X-Ops-Server-API-Version:{}",
            input.timestamp, input.user_id, input.server_api_version
        ),
        SignVersion::V1_0 | SignVersion::V1_1 => {
            let user_id = if version == SignVersion::V1_1 {
                version.hash_base64(input.user_id.as_bytes())
            } else {
                input.user_id.to_owned()
            };
            format!(
                "Method:{method}\nHashed Path:{}\nX-Ops-Content-Hash:{content_hash}\n\
                 X-Ops-Timestamp:{}\nX-Ops-UserId:{user_id}",
                version.hash_base64(path.as_bytes()),
                input.timestamp
            )
        }
    }
}

/// The authentication headers of one request, in the order mixlib-authentication lists them:
/// `X-Ops-Sign`, `X-Ops-Userid`, `X-Ops-Timestamp`, `X-Ops-Content-Hash`, then
/// `X-Ops-Authorization-1…N` (the base64 signature in 60-character lines).
pub fn sign_request(
    key: &ClientKey,
    version: SignVersion,
    input: &SigningInput<'_>,
) -> Result<Vec<(String, String)>, ChefError> {
    let canonical = canonical_request(version, input);
    let mut rng = rand::thread_rng();
    let signature = match version {
        SignVersion::V1_3 => key.0.sign_with_rng(
            &mut rng,
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(canonical.as_bytes()),
        ),
        // Protocols 1.0 and 1.1 encrypt the canonical string itself with the private key
        // (PKCS#1 v1.5 type-1 padding, no DigestInfo), as OpenSSL's private_encrypt does.
        SignVersion::V1_0 | SignVersion::V1_1 => key.0.sign_with_rng(
            &mut rng,
            Pkcs1v15Sign::new_unprefixed(),
            canonical.as_bytes(),
        ),
    }
    .map_err(|e| ChefError::Signing {
        version: version.as_str(),
        reason: e.to_string(),
    })?;
    let encoded = BASE64.encode(signature);
    let mut headers = vec![
        (
            "X-Ops-Sign".to_owned(),
            format!(
                "algorithm={};version={};",
                version.algorithm(),
                version.as_str()
            ),
        ),
        ("X-Ops-Userid".to_owned(), input.user_id.to_owned()),
        ("X-Ops-Timestamp".to_owned(), input.timestamp.to_owned()),
        (
            "X-Ops-Content-Hash".to_owned(),
            version.hash_base64(input.body),
        ),
    ];
    for (index, line) in encoded
        .as_bytes()
        .chunks(AUTHORIZATION_LINE_LEN)
        .enumerate()
    {
        headers.push((
            format!("X-Ops-Authorization-{}", index + 1),
            String::from_utf8_lossy(line).into_owned(),
        ));
    }
    Ok(headers)
}

/// The current UTC time as the protocol writes it.
fn timestamp_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// What one successful authenticated check found.
#[derive(Debug, Clone)]
pub struct ServerCheck {
    /// The server's `X-Ops-API-Info` header (flavor and version), when it sends one.
    pub api_info: Option<String>,
    /// How long the check took.
    pub latency: Duration,
}

/// A Chef Server API client for one server (or organization) and one client key.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChefClient {
    http: reqwest::Client,
    base: Url,
    client_name: String,
    key: ClientKey,
    version: SignVersion,
    max_response_bytes: usize,
}

/// Largest response body a client built with [`ChefClient::new`] accepts.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl ChefClient {
    /// Builds a client from `[chef]` settings, reading the key file. Does not touch the
    /// network.
    pub fn from_settings(settings: &ChefSettings) -> Result<Self, ChefError> {
        let server_url = settings.server_url.clone().ok_or(ChefError::Settings {
            key: "chef.server_url",
            message: "not set; expected the Chef server URL, e.g. \
                      https://chef.example.com/organizations/NAME"
                .into(),
        })?;
        let client_name = settings.client_name.clone().ok_or(ChefError::Settings {
            key: "chef.client_name",
            message: "not set; expected the client or user name that signs requests".into(),
        })?;
        let key_path = settings.client_key.as_deref().ok_or(ChefError::Settings {
            key: "chef.client_key",
            message: "not set; expected the path of the client's private key (PEM)".into(),
        })?;
        let key = ClientKey::read(key_path)?;
        let version = SignVersion::parse(&settings.sign_version)?;
        Self::new(
            server_url,
            client_name,
            key,
            version,
            Duration::from_secs(settings.timeout_secs.max(1)),
        )
        .map(|client| client.with_max_response_bytes(settings.max_response_bytes))
    }

    /// The same client, refusing response bodies larger than `bytes`.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds a client. `server_url` may end in `/organizations/NAME`.
    pub fn new(
        server_url: Url,
        client_name: String,
        key: ClientKey,
        version: SignVersion,
        timeout: Duration,
    ) -> Result<Self, ChefError> {
        if server_url.cannot_be_a_base() || !matches!(server_url.scheme(), "http" | "https") {
            return Err(ChefError::Settings {
                key: "chef.server_url",
                message: format!("expected an http or https URL, got {server_url}"),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(same_origin_redirects())
            .user_agent(concat!("pincher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source: reqwest::Error| ChefError::Unreachable {
                url: redact_url(server_url.as_str()),
                source: source.without_url(),
            })?;
        Ok(Self {
            http,
            base: server_url,
            client_name,
            key,
            version,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// The server (or organization) URL.
    pub fn server_url(&self) -> &Url {
        &self.base
    }

    /// The name that signs requests.
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// The signing protocol version in use.
    pub fn sign_version(&self) -> SignVersion {
        self.version
    }

    /// The URL of `segments` under the server URL, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends one signed request and returns the status, headers and JSON body of a success.
    async fn send(
        &self,
        operation: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(HeaderMap, Value), ChefError> {
        let url = self.endpoint(segments, query);
        let body_bytes = match body {
            Some(value) => {
                serde_json::to_vec(value).map_err(|e| ChefError::InvalidInput(e.to_string()))?
            }
            None => Vec::new(),
        };
        let timestamp = timestamp_now();
        let signed = sign_request(
            &self.key,
            self.version,
            &SigningInput {
                method: method.as_str(),
                path: url.path(),
                body: &body_bytes,
                timestamp: &timestamp,
                user_id: &self.client_name,
                server_api_version: SERVER_API_VERSION,
            },
        )?;
        let mut headers = HeaderMap::new();
        for (name, value) in signed {
            let name = HeaderName::try_from(name).map_err(|e| ChefError::Signing {
                version: self.version.as_str(),
                reason: e.to_string(),
            })?;
            let value = HeaderValue::try_from(value).map_err(|_| {
                ChefError::InvalidInput(format!(
                    "{name} must be visible ASCII; check chef.client_name"
                ))
            })?;
            headers.insert(name, value);
        }
        headers.insert("Accept", HeaderValue::from_static("application/json"));
        headers.insert(
            "X-Chef-Version",
            HeaderValue::from_static(CHEF_CLIENT_VERSION),
        );
        headers.insert(
            "X-Ops-Server-API-Version",
            HeaderValue::from_static(SERVER_API_VERSION),
        );
        for (name, value) in telemetry::call_headers() {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        }
        let method_is_idempotent = method.is_idempotent();
        let mut request = self.http.request(method, url.clone()).headers(headers);
        if body.is_some() {
            request = request
                .header("Content-Type", "application/json")
                .body(body_bytes);
        }
        tracing::debug!(operation, path = url.path(), "chef request");
        // The URL is named once, redacted; reqwest's own copy of it is dropped.
        let unreachable = |source: reqwest::Error| ChefError::Unreachable {
            url: redact_url(self.base.as_str()),
            source: source.without_url(),
        };
        // Sent again once, when idempotent, if the connection closed before any answer: a
        // server closing a kept-alive connection as the request goes out on it never saw it
        // (Go's HTTP client does the same).
        let again = method_is_idempotent.then(|| request.try_clone()).flatten();
        let response = match (request.send().await, again) {
            (Err(e), Some(again)) if closed_before_answer(&e) => {
                tracing::debug!(operation, error = %e.without_url(), "chef connection closed; sending again");
                again.send().await
            }
            (sent, _) => sent,
        }
        .map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = match read_body(response, self.max_response_bytes).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(BodyError::Transport(e)) => return Err(unreachable(e)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(ChefError::InvalidResponse {
                    operation,
                    reason: format!(
                        "the response is larger than {limit} bytes (chef.max_response_bytes)"
                    ),
                });
            }
        };
        if status.is_success() {
            let value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| ChefError::InvalidResponse {
                    operation,
                    reason: format!("the body is not JSON: {e}"),
                })?
            };
            return Ok((headers, value));
        }
        let message = server_message(&text);
        let path = url.path().to_owned();
        Err(match status.as_u16() {
            401 => ChefError::Authentication {
                url: redact_url(self.base.as_str()),
                client: self.client_name.clone(),
                message,
            },
            403 => ChefError::Forbidden {
                client: self.client_name.clone(),
                operation,
                message,
            },
            404 => ChefError::NotFound { path },
            409 => ChefError::Conflict { path },
            status => ChefError::Status {
                status,
                operation,
                message,
            },
        })
    }

    /// A signed request of `segments` (path segments under the server URL), answered with
    /// the response headers and JSON body of a success.
    pub async fn request(
        &self,
        operation: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(HeaderMap, Value), ChefError> {
        observe(
            "chef",
            operation,
            self.send(operation, method, segments, query, body),
        )
        .await
    }

    /// A signed GET.
    pub async fn get(
        &self,
        operation: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ChefError> {
        self.request(operation, Method::GET, segments, query, None)
            .await
            .map(|(_, body)| body)
    }

    /// A signed POST of a JSON body.
    pub async fn post(
        &self,
        operation: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, ChefError> {
        self.request(operation, Method::POST, segments, query, Some(body))
            .await
            .map(|(_, body)| body)
    }

    /// A signed DELETE.
    pub async fn delete(
        &self,
        operation: &'static str,
        segments: &[&str],
    ) -> Result<Value, ChefError> {
        self.request(operation, Method::DELETE, segments, &[], None)
            .await
            .map(|(_, body)| body)
    }

    /// One authenticated GET of a small object every client may read (the `_default`
    /// environment): proves the server is reachable and accepts this client's signature.
    pub async fn check(&self) -> Result<ServerCheck, ChefError> {
        let started = Instant::now();
        let (headers, _) = self
            .request(
                "check",
                Method::GET,
                &["environments", "_default"],
                &[],
                None,
            )
            .await?;
        Ok(ServerCheck {
            api_info: headers
                .get("X-Ops-API-Info")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            latency: started.elapsed(),
        })
    }
}

/// Whether `e` says the connection closed before an answer came.
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message();
        }
        source = error.source();
    }
    false
}

/// The message of a Chef error body (`{"error": ["…"]}` or `{"error": "…"}`), else the text.
fn server_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let message = match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::String(s)) => s.clone(),
        _ => text.trim().chars().take(300).collect(),
    };
    if message.is_empty() {
        "no details given".into()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known-answer vectors of mixlib-authentication's own spec
    // (spec/mixlib/authentication/mixlib_authentication_spec.rb, Apache-2.0): its test key,
    // request and the signatures mixlib produces for them.
    const SPEC_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA0ueqo76MXuP6XqZBILFziH/9AI7C6PaN5W0dSvkr9yInyGHS
z/IR1+4tqvP2qlfKVKI4CP6BFH251Ft9qMUBuAsnlAVQ1z0exDtIFFOyQCdR7iXm
jBIWMSS4buBwRQXwDK7id1OxtU23qVJv+xwEV0IzaaSJmaGLIbvRBD+qatfUuQJB
MU/04DdJIwvLtZBYdC2219m5dUBQaa4bimL+YN9EcsDzD9h9UxQo5ReK7b3cNMzJ
BKJWLzFBcJuePMzAnLFktr/RufX4wpXe6XJxoVPaHo72GorLkwnQ0HYMTY8rehT4
mDi1FI969LHCFFaFHSAaRnwdXaQkJmSfcxzCYQIDAQABAoIBAQCW3I4sKN5B9jOe
xq/pkeWBq4OvhW8Ys1yW0zFT8t6nHbB1XrwscQygd8gE9BPqj3e0iIEqtdphbPmj
VHqTYbC0FI6QDClifV7noTwTBjeIOlgZ0NSUN0/WgVzIOxUz2mZ2vBZUovKILPqG
TOi7J7RXMoySMdcXpP1f+PgvYNcnKsT72UcWaSXEV8/zo+Zm/qdGPVWwJonri5Mp
DVm5EQSENBiRyt028rU6ElXORNmoQpVjDVqZ1gipzXkifdjGyENw2rt4V/iKYD7V
5iqXOsvP6Cemf4gbrjunAgDG08S00kiUgvVWcdXW+dlsR2nCvH4DOEe3AYYh/aH8
DxEE7FbtAoGBAPcNO8fJ56mNw0ow4Qg38C+Zss/afhBOCfX4O/SZKv/roRn5+gRM
KRJYSVXNnsjPI1plzqR4OCyOrjAhtuvL4a0DinDzf1+fiztyNohwYsW1vYmqn3ti
EN0GhSgE7ppZjqvLQ3f3LUTxynhA0U+k9wflb4irIlViTUlCsOPkrNJDAoGBANqL
Q+vvuGSsmRLU/Cenjy+Mjj6+QENg51dz34o8JKuVKIPKU8pNnyeLa5fat0qD2MHm
OB9opeQOcw0dStodxr6DB3wi83bpjeU6BWUGITNiWEaZEBrQ0aiqNJJKrrHm8fAZ
9o4l4oHc4hI0kYVYYDuxtKuVJrzZiEapTwoOcYiLAoGBAI/EWbeIHZIj9zOjgjEA
LHvm25HtulLOtyk2jd1njQhlHNk7CW2azIPqcLLH99EwCYi/miNH+pijZ2aHGCXb
/bZrSxM0ADmrZKDxdB6uGCyp+GS2sBxjEyEsfCyvwhJ8b3Q100tqwiNO+d5FCglp
HICx2dgUjuRVUliBwOK93nx1AoGAUI8RhIEjOYkeDAESyhNMBr0LGjnLOosX+/as
qiotYkpjWuFULbibOFp+WMW41vDvD9qrSXir3fstkeIAW5KqVkO6mJnRoT3Knnra
zjiKOITCAZQeiaP8BO5o3pxE9TMqb9VCO3ffnPstIoTaN4syPg7tiGo8k1SklVeH
2S8lzq0CgYAKG2fljIYWQvGH628rp4ZcXS4hWmYohOxsnl1YrszbJ+hzR+IQOhGl
YlkUQYXhy9JixmUUKtH+NXkKX7Lyc8XYw5ETr7JBT3ifs+G7HruDjVG78EJVojbd
8uLA+DdQm5mg4vd1GTiSK65q/3EeoBlUaVor3HhLFki+i9qpT8CBsg==
-----END RSA PRIVATE KEY-----";

    const SPEC_PATH: &str = "/organizations/clownco";
    const SPEC_INPUT: SigningInput<'static> = SigningInput {
        method: "post",
        path: SPEC_PATH,
        body: b"Spec Body",
        timestamp: "2009-01-01T12:00:00Z",
        user_id: "spec-user",
        server_api_version: "1",
    };

    const SPEC_LINES_V1_0: [&str; 6] = [
        "jVHrNniWzpbez/eGWjFnO6lINRIuKOg40ZTIQudcFe47Z9e/HvrszfVXlKG4",
        "NMzYZgyooSvU85qkIUmKuCqgG2AIlvYa2Q/2ctrMhoaHhLOCWWoqYNMaEqPc",
        "3tKHE+CfvP+WuPdWk4jv4wpIkAz6ZLxToxcGhXmZbXpk56YTmqgBW2cbbw4O",
        "IWPZDHSiPcw//AYNgW1CCDptt+UFuaFYbtqZegcBd2n/jzcWODA7zL4KWEUy",
        "9q4rlh/+1tBReg60QdsmDRsw/cdO1GZrKtuCwbuD4+nbRdVBKv72rqHX9cu0",
        "utju9jzczCyB+sSAQWrxSsXB/b8vV2qs0l4VD2ML+w==",
    ];
    const SPEC_LINES_V1_1: [&str; 6] = [
        "UfZD9dRz6rFu6LbP5Mo1oNHcWYxpNIcUfFCffJS1FQa0GtfU/vkt3/O5HuCM",
        "1wIFl/U0f5faH9EWpXWY5NwKR031Myxcabw4t4ZLO69CIh/3qx1XnjcZvt2w",
        "c2R9bx/43IWA/r8w8Q6decuu0f6ZlNheJeJhaYPI8piX/aH+uHBH8zTACZu8",
        "vMnl5MF3/OIlsZc8cemq6eKYstp8a8KYq9OmkB5IXIX6qVMJHA6fRvQEB/7j",
        "281Q7oI/O+lE8AmVyBbwruPb7Mp6s4839eYiOdjbDwFjYtbS3XgAjrHlaD7W",
        "FDlbAG7H8Dmvo+wBxmtNkszhzbBnEYtuwQqT8nM/8A==",
    ];
    const SPEC_LINES_V1_3: [&str; 6] = [
        "FZOmXAyOBAZQV/uw188iBljBJXOm+m8xQ/8KTGLkgGwZNcRFxk1m953XjE3W",
        "VGy1dFT76KeaNWmPCNtDmprfH2na5UZFtfLIKrPv7xm80V+lzEzTd9WBwsfP",
        "42dZ9N+V9I5SVfcL/lWrrlpdybfceJC5jOcP5tzfJXWUITwb6Z3Erg3DU3Uh",
        "H9h9E0qWlYGqmiNCVrBnpe6Si1gU/Jl+rXlRSNbLJ4GlArAPuL976iTYJTzE",
        "MmbLUIm3JRYi00Yb01IUCCKdI90vUq1HHNtlTEu93YZfQaJwRxXlGkCNwIJe",
        "fy49QzaCIEu1XiOx5Jn+4GmkrZch/RrK9VzQWXgs+w==",
    ];

    /// A client of a server that drops the first connection after reading the request, then
    /// answers `{}` on the next; and how many requests the server read.
    async fn drops_the_first_connection()
    -> (ChefClient, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url =
            Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = vec![0; 16 * 1024];
                let _ = socket.read(&mut buffer).await;
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n > 0 {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                }
            }
        });
        let client = ChefClient::new(
            url,
            "spec".into(),
            spec_key(),
            SignVersion::V1_3,
            Duration::from_secs(5),
        )
        .expect("client");
        (client, seen)
    }

    #[tokio::test]
    async fn an_idempotent_request_is_sent_again_once_when_the_connection_closes_unanswered() {
        let (client, seen) = drops_the_first_connection().await;
        let (_, body) = client
            .request("nodes", Method::GET, &["nodes"], &[], None)
            .await
            .expect("the second try is answered");
        assert_eq!(body, serde_json::json!({}));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_post_is_not_sent_again_when_the_connection_closes_unanswered() {
        let (client, seen) = drops_the_first_connection().await;
        let error = client
            .request(
                "create",
                Method::POST,
                &["nodes"],
                &[],
                Some(&serde_json::json!({})),
            )
            .await
            .expect_err("not sent again");
        assert!(matches!(error, ChefError::Unreachable { .. }), "{error}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    fn spec_key() -> ClientKey {
        ClientKey::from_pem(&SecretString::from(SPEC_KEY), "spec").unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(version: SignVersion) -> Vec<(String, String)> {
        sign_request(&spec_key(), version, &SPEC_INPUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn authorization_lines(headers: &[(String, String)]) -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k.starts_with("X-Ops-Authorization-"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn canonical_request_v1_0_matches_mixlib() {
        assert_eq!(
            canonical_request(SignVersion::V1_0, &SPEC_INPUT),
            "Method:POST\n\
             Hashed Path:YtBWDn1blGGuFIuKksdwXzHU9oE=\n\
             X-Ops-Content-Hash:DFteJZPVv6WKdQmMqZUQUumUyRs=\n\
             X-Ops-Timestamp:2009-01-01T12:00:00Z\n\
             X-Ops-UserId:spec-user"
        );
    }

    #[test]
    fn canonical_request_v1_1_hashes_the_user_id() {
        let digested_user = BASE64.encode(Sha1::digest(b"spec-user"));
        assert_eq!(
            canonical_request(SignVersion::V1_1, &SPEC_INPUT),
            format!(
                "Method:POST\n\
                 Hashed Path:YtBWDn1blGGuFIuKksdwXzHU9oE=\n\
                 X-Ops-Content-Hash:DFteJZPVv6WKdQmMqZUQUumUyRs=\n\
                 X-Ops-Timestamp:2009-01-01T12:00:00Z\n\
                 X-Ops-UserId:{digested_user}"
            )
        );
    }

    #[test]
    fn canonical_request_v1_3_matches_mixlib() {
        assert_eq!(
            canonical_request(SignVersion::V1_3, &SPEC_INPUT),
            "Method:POST\n\
             Path:/organizations/clownco\n\
             X-Ops-Content-Hash:hDlKNZhIhgso3Fs0S0pZwJ0xyBWtR1RBaeHs1DrzOho=\n\
             X-Ops-Sign:version=1.3\n\
             X-Ops-Timestamp:2009-01-01T12:00:00Z\n\
             X-Ops-UserId:spec-user\n\
             X-Ops-Server-API-Version:1"
        );
    }

    #[test]
    fn signatures_match_mixlib_for_every_version() {
        for (version, lines, sign, content_hash) in [
            (
                SignVersion::V1_0,
                SPEC_LINES_V1_0,
                "algorithm=sha1;version=1.0;",
                "DFteJZPVv6WKdQmMqZUQUumUyRs=",
            ),
            (
                SignVersion::V1_1,
                SPEC_LINES_V1_1,
                "algorithm=sha1;version=1.1;",
                "DFteJZPVv6WKdQmMqZUQUumUyRs=",
            ),
            (
                SignVersion::V1_3,
                SPEC_LINES_V1_3,
                "algorithm=sha256;version=1.3;",
                "hDlKNZhIhgso3Fs0S0pZwJ0xyBWtR1RBaeHs1DrzOho=",
            ),
        ] {
            let headers = headers(version);
            assert_eq!(authorization_lines(&headers), lines, "version {version}");
            assert_eq!(header(&headers, "X-Ops-Sign"), sign);
            assert_eq!(header(&headers, "X-Ops-Userid"), "spec-user");
            assert_eq!(header(&headers, "X-Ops-Timestamp"), "2009-01-01T12:00:00Z");
            assert_eq!(header(&headers, "X-Ops-Content-Hash"), content_hash);
            assert_eq!(header(&headers, "X-Ops-Authorization-1").len(), 60);
        }
    }

    #[test]
    fn a_pkcs8_key_signs_like_its_pkcs1_form() -> Result<(), Box<dyn std::error::Error>> {
        use rsa::pkcs8::EncodePrivateKey as _;
        let pkcs8 = spec_key().0.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)?;
        let key = ClientKey::from_pem(&SecretString::from(pkcs8.to_string()), "pkcs8")?;
        let signed = sign_request(&key, SignVersion::V1_3, &SPEC_INPUT)?;
        assert_eq!(authorization_lines(&signed), SPEC_LINES_V1_3);
        Ok(())
    }

    #[test]
    fn canonical_path_drops_query_double_and_trailing_slashes() {
        assert_eq!(
            canonical_path("//organizations///acme/nodes/"),
            "/organizations/acme/nodes"
        );
        assert_eq!(canonical_path("/search/node?q=*:*&rows=5"), "/search/node");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("///"), "/");
        assert_eq!(canonical_path(""), "/");
    }

    #[test]
    fn the_query_string_is_not_signed() {
        let plain = canonical_request(SignVersion::V1_3, &SPEC_INPUT);
        let with_query = canonical_request(
            SignVersion::V1_3,
            &SigningInput {
                path: "/organizations/clownco/?q=name:x",
                ..SPEC_INPUT
            },
        );
        assert_eq!(plain, with_query);
    }

    #[test]
    fn a_user_id_too_long_for_protocol_1_0_is_a_signing_error() {
        let long_user = "A".repeat(200);
        let long_path = format!("{SPEC_PATH}/nodes/{}", "A".repeat(250));
        let input = SigningInput {
            user_id: &long_user,
            path: &long_path,
            ..SPEC_INPUT
        };
        let err = sign_request(&spec_key(), SignVersion::V1_0, &input)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("protocol 1.0"), "{err}");
        assert!(sign_request(&spec_key(), SignVersion::V1_1, &input).is_ok());
    }

    #[test]
    fn the_key_is_never_shown() {
        let shown = format!("{:?}", spec_key());
        assert_eq!(shown, "ClientKey([redacted])");
    }

    #[test]
    fn unreadable_keys_name_the_file_not_the_contents() {
        let err = ClientKey::from_pem(&SecretString::from("not a key at all"), "/etc/chef/x.pem")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/etc/chef/x.pem"), "{err}");
        assert!(!err.contains("not a key at all"), "{err}");
    }

    #[test]
    fn sign_versions_parse_and_reject_unknown_ones() {
        assert_eq!(SignVersion::parse("1.3").ok(), Some(SignVersion::V1_3));
        assert_eq!(SignVersion::parse("1.1").ok(), Some(SignVersion::V1_1));
        assert_eq!(SignVersion::parse("1.0").ok(), Some(SignVersion::V1_0));
        let err = SignVersion::parse("1.2").err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("chef.sign_version"));
    }

    #[test]
    fn endpoints_keep_the_organization_path() -> Result<(), Box<dyn std::error::Error>> {
        for base in [
            "https://chef.example.com/organizations/acme",
            "https://chef.example.com/organizations/acme/",
        ] {
            let client = ChefClient::new(
                Url::parse(base)?,
                "pincher".into(),
                spec_key(),
                SignVersion::V1_3,
                Duration::from_secs(5),
            )?;
            let url = client.endpoint(&["nodes", "web 1"], &[("q", "name:*".into())]);
            assert_eq!(
                url.as_str(),
                "https://chef.example.com/organizations/acme/nodes/web%201?q=name%3A*"
            );
        }
        let client = ChefClient::new(
            Url::parse("http://127.0.0.1:4545")?,
            "admin".into(),
            spec_key(),
            SignVersion::V1_0,
            Duration::from_secs(5),
        )?;
        assert_eq!(client.endpoint(&["nodes"], &[]).path(), "/nodes");
        Ok(())
    }

    #[test]
    fn server_messages_are_taken_from_chef_error_bodies() {
        assert_eq!(server_message(r#"{"error":["a","b"]}"#), "a; b");
        assert_eq!(server_message(r#"{"error":"x"}"#), "x");
        assert_eq!(server_message("plain"), "plain");
        assert_eq!(server_message(""), "no details given");
    }
}
