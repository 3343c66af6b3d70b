//! The Ops Manager public API client: HTTP Digest authentication (RFC 7616, MD5, qop=auth)
//! with nonce counting and a fresh challenge on a stale nonce, timeouts, and retries with
//! backoff on 5xx and 429. Automation configurations are kept as the exact bytes received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{GroupId, OpsManagerError};
use crate::config::OpsManagerSettings;
use crate::config::telemetry;
use crate::plugins::http::{BodyError, read_body, same_origin_redirects};
use crate::plugins::observe;

/// Path of the public API under the Ops Manager base URL.
pub const API_PATH: &str = "/api/public/v1.0";
/// Groups asked for per page when listing.
const PAGE_SIZE: u32 = 100;
/// Most pages of groups read: a bound on a server that keeps sending `next` links.
const MAX_PAGES: u32 = 1000;
/// Authentication rounds one request may take (first challenge plus stale-nonce renewals).
const AUTH_ROUNDS: u32 = 6;

/// An Ops Manager group (project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// The group name.
    #[serde(default)]
    pub name: String,
}

/// An automation configuration exactly as Ops Manager sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct AutomationConfig {
    /// The document's bytes, untouched.
    pub bytes: Vec<u8>,
    /// Its `version`.
    pub version: i64,
}

impl std::fmt::Debug for AutomationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutomationConfig")
            .field("version", &self.version)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl AutomationConfig {
    /// Reads the `version` from a copy of `bytes`, keeping the bytes as they are.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: i64,
        }
        let parsed: VersionOnly = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not an automation configuration with a version: {e}"))?;
        if parsed.version < 0 {
            return Err(format!(
                "the version is {}; Ops Manager versions are never negative",
                parsed.version
            ));
        }
        Ok(Self {
            version: parsed.version,
            bytes,
        })
    }
}

/// A digest challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    stale: bool,
}

/// The challenge in use and how many times its nonce was sent.
#[derive(Debug, Default)]
struct DigestState {
    challenge: Option<Challenge>,
    nonce_count: u32,
}

/// A client of one Ops Manager, cheap to clone.
#[derive(Clone)]
pub struct OpsManagerClient {
    http: reqwest::Client,
    api: Url,
    public_key: String,
    private_key: SecretString,
    max_retries: u32,
    max_response_bytes: usize,
    retry_delay: Duration,
    digest: Arc<Mutex<DigestState>>,
}

impl std::fmt::Debug for OpsManagerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsManagerClient")
            .field("api", &self.api.as_str())
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

#[derive(Deserialize)]
struct ApiErrorBody {
    #[serde(default)]
    detail: String,
    #[serde(default, rename = "errorCode")]
    error_code: String,
}

#[derive(Deserialize)]
struct GroupPage {
    #[serde(default)]
    results: Vec<Group>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    rel: String,
}

impl OpsManagerClient {
    /// Builds a client from `[opsmanager]` settings. Does not touch the network.
    pub fn from_settings(settings: &OpsManagerSettings) -> Result<Self, OpsManagerError> {
        let base = settings
            .base_url
            .as_ref()
            .ok_or(OpsManagerError::NotConfigured("opsmanager.base_url"))?;
        let public_key = settings
            .public_key
            .clone()
            .ok_or(OpsManagerError::NotConfigured("opsmanager.public_key"))?;
        let private_key = settings
            .private_key
            .clone()
            .ok_or(OpsManagerError::NotConfigured("opsmanager.private_key"))?;
        let api_text = format!("{}{API_PATH}", base.as_str().trim_end_matches('/'));
        let api = Url::parse(&api_text).map_err(|e| OpsManagerError::Protocol {
            what: "the base URL".into(),
            message: format!("{api_text}: {e}"),
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.clamp(1, 10)))
            .redirect(same_origin_redirects())
            .user_agent(concat!("pincher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpsManagerError::transport("building the HTTP client", &e))?;
        Ok(Self {
            http,
            api,
            public_key,
            private_key,
            max_retries: settings.max_retries,
            max_response_bytes: settings.max_response_bytes,
            retry_delay: Duration::from_millis(settings.retry_delay_ms),
            digest: Arc::default(),
        })
    }

    /// One authenticated call (the first page of groups, one item), for health checks.
    #[tracing::instrument(skip_all)]
    pub async fn check(&self) -> Result<(), OpsManagerError> {
        observe("opsmanager", "check", async {
            self.call(Method::GET, "/groups?pageNum=1&itemsPerPage=1", None, None)
                .await
                .map(drop)
        })
        .await
    }

    /// Every group the key can see, following the pages to the end.
    #[tracing::instrument(skip_all)]
    pub async fn list_groups(&self) -> Result<Vec<Group>, OpsManagerError> {
        observe("opsmanager", "list_groups", async {
            let mut groups: Vec<Group> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut page_num = 1u32;
            loop {
                let path = format!("/groups?pageNum={page_num}&itemsPerPage={PAGE_SIZE}");
                let bytes = self.call(Method::GET, &path, None, None).await?;
                let page: GroupPage =
                    serde_json::from_slice(&bytes).map_err(|e| OpsManagerError::Protocol {
                        what: format!("GET {path}"),
                        message: e.to_string(),
                    })?;
                let has_next = page.links.iter().any(|l| l.rel == "next");
                let before = groups.len();
                groups.extend(
                    page.results
                        .into_iter()
                        .filter(|group| seen.insert(group.id.clone())),
                );
                // A page with nothing new ends the listing: a server repeating a page with a
                // `next` link would otherwise be read until the page cap.
                if !has_next || groups.len() == before {
                    return Ok(groups);
                }
                if page_num >= MAX_PAGES {
                    return Err(OpsManagerError::Protocol {
                        what: format!("GET {path}"),
                        message: format!("more than {MAX_PAGES} pages of groups; stopped"),
                    });
                }
                page_num += 1;
            }
        })
        .await
    }

    /// The automation configuration of `group`, byte for byte.
    #[tracing::instrument(skip_all, fields(group = %group))]
    pub async fn automation_config(
        &self,
        group: &GroupId,
    ) -> Result<AutomationConfig, OpsManagerError> {
        observe("opsmanager", "get_automation_config", async {
            let path = format!("/groups/{group}/automationConfig");
            let bytes = self.call(Method::GET, &path, None, Some(group)).await?;
            AutomationConfig::from_bytes(bytes).map_err(|message| OpsManagerError::Protocol {
                what: format!("GET {path}"),
                message,
            })
        })
        .await
    }

    /// Replaces the automation configuration of `group` with `document`, sent as it is.
    #[tracing::instrument(skip_all, fields(group = %group))]
    pub async fn put_automation_config(
        &self,
        group: &GroupId,
        document: &[u8],
    ) -> Result<(), OpsManagerError> {
        observe("opsmanager", "put_automation_config", async {
            let path = format!("/groups/{group}/automationConfig");
            self.call(Method::PUT, &path, Some(document), Some(group))
                .await
                .map(drop)
        })
        .await
    }

    /// Sends one request, retrying 5xx, 429 and transport failures with backoff.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        group: Option<&GroupId>,
    ) -> Result<Vec<u8>, OpsManagerError> {
        let what = format!("{method} {path}");
        let mut attempt = 0u32;
        loop {
            let result = self.send_authenticated(&method, path, body).await;
            let retryable = match &result {
                Ok((status, _, _)) => {
                    status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(BodyError::Transport(e)) => e.is_timeout() || e.is_connect() || e.is_request(),
                Err(BodyError::TooLarge { .. }) => false,
            };
            if retryable && attempt < self.max_retries {
                let delay = self.backoff(attempt, result.as_ref().ok().map(|(_, h, _)| h));
                tracing::warn!(request = %what, attempt, delay_ms = delay.as_millis() as u64, "retrying Ops Manager call");
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            let (status, _, bytes) = result.map_err(|e| match e {
                BodyError::Transport(e) => OpsManagerError::transport(what.clone(), &e),
                BodyError::TooLarge { limit } => OpsManagerError::Protocol {
                    what: what.clone(),
                    message: format!(
                        "the response is larger than {limit} bytes \
                         (opsmanager.max_response_bytes)"
                    ),
                },
            })?;
            if status.is_success() {
                return Ok(bytes);
            }
            return Err(self.status_error(status, &bytes, what, group));
        }
    }

    fn backoff(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        let retry_after = headers
            .and_then(|h| h.get(reqwest::header::RETRY_AFTER))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let exponential = self
            .retry_delay
            .saturating_mul(2u32.saturating_pow(attempt));
        retry_after
            .unwrap_or(exponential)
            .min(Duration::from_secs(30))
    }

    fn status_error(
        &self,
        status: StatusCode,
        bytes: &[u8],
        what: String,
        group: Option<&GroupId>,
    ) -> OpsManagerError {
        let detail = serde_json::from_slice::<ApiErrorBody>(bytes)
            .map(|b| match (b.detail.is_empty(), b.error_code.is_empty()) {
                (false, false) => format!("{} ({})", b.detail, b.error_code),
                (false, true) => b.detail,
                (true, _) => b.error_code,
            })
            .unwrap_or_default();
        match (status, group) {
            (StatusCode::UNAUTHORIZED, _) => OpsManagerError::Unauthorized {
                public_key: self.public_key.clone(),
                detail,
            },
            (StatusCode::FORBIDDEN, _) => OpsManagerError::Forbidden { what, detail },
            (StatusCode::NOT_FOUND, Some(group)) => OpsManagerError::GroupNotFound {
                group: group.to_string(),
                detail,
            },
            _ => OpsManagerError::Status {
                what,
                status: status.as_u16(),
                detail,
            },
        }
    }

    /// Sends one request with digest authentication: answers the challenge, and takes a fresh
    /// one when the nonce in use is stale or was issued for another exchange.
    async fn send_authenticated(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), BodyError> {
        let uri = format!("{}{path}", self.api.path());
        let url = format!("{}{path}", self.api.as_str());
        let mut fresh_challenge = false;
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            let authorization = self.authorization(method, &uri);
            let sent_auth = authorization.is_some();
            let mut request = self.http.request(method.clone(), &url);
            for (name, value) in telemetry::call_headers() {
                request = request.header(name, value);
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
            }
            let response = request.send().await.map_err(BodyError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = read_body(response, self.max_response_bytes).await?;
            if status != StatusCode::UNAUTHORIZED || rounds >= AUTH_ROUNDS {
                return Ok((status, headers, bytes));
            }
            let Some(challenge) = headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_challenge)
            else {
                return Ok((status, headers, bytes));
            };
            let wrong_keys = sent_auth && fresh_challenge && !challenge.stale;
            if wrong_keys {
                return Ok((status, headers, bytes));
            }
            if challenge.stale {
                tracing::debug!("Ops Manager nonce is stale; answering the new challenge");
            }
            fresh_challenge = true;
            if let Ok(mut state) = self.digest.lock() {
                state.challenge = Some(challenge);
                state.nonce_count = 0;
            }
        }
    }

    /// The `Authorization` header for the next request, if a challenge is known.
    fn authorization(&self, method: &Method, uri: &str) -> Option<String> {
        let (challenge, nc) = {
            let mut state = self.digest.lock().ok()?;
            let challenge = state.challenge.clone()?;
            state.nonce_count += 1;
            (challenge, state.nonce_count)
        };
        let nc = format!("{nc:08x}");
        let cnonce = uuid::Uuid::new_v4().simple().to_string();
        let ha1 = md5_hex(
            format!(
                "{}:{}:{}",
                self.public_key,
                challenge.realm,
                self.private_key.expose_secret()
            )
            .as_bytes(),
        );
        let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
        let response =
            md5_hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce).as_bytes());
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\"",
            quote_escape(&self.public_key),
            quote_escape(&challenge.realm),
            quote_escape(&challenge.nonce),
        );
        if let Some(opaque) = &challenge.opaque {
            header.push_str(&format!(", opaque=\"{}\"", quote_escape(opaque)));
        }
        Some(header)
    }
}

/// Lowercase hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

fn quote_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Parses `Digest realm="…", nonce="…", …` (RFC 7616 §3.3); `None` for other schemes or
/// challenges without MD5 and qop=auth.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let params = parse_auth_params(params);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
    if !algorithm.eq_ignore_ascii_case("MD5") {
        return None;
    }
    let qop_auth =
        get("qop").is_none_or(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")));
    if !qop_auth {
        return None;
    }
    Some(Challenge {
        realm: get("realm")?,
        nonce: get("nonce")?,
        opaque: get("opaque"),
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Splits `k=v, k="quoted, \"v\""` into pairs.
fn parse_auth_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() {
            return pairs;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quoted_commas_and_stale() {
        let c = parse_challenge(
            r#"Digest realm="MMS Public API", domain="", nonce="a,b\"c", algorithm=MD5, qop="auth", stale=true"#,
        );
        assert_eq!(
            c,
            Some(Challenge {
                realm: "MMS Public API".into(),
                nonce: "a,b\"c".into(),
                opaque: None,
                stale: true,
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        assert_eq!(
            parse_challenge("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256"),
            None
        );
    }

    #[test]
    fn rfc_2617_example_response() {
        // RFC 2617 §3.5: Mufasa / Circle Of Life.
        let ha1 = md5_hex(b"Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex(b"GET:/dir/index.html");
        let response = md5_hex(
            format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}")
                .as_bytes(),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let settings = OpsManagerSettings {
            base_url: Url::parse("http://om.example").ok(),
            public_key: Some("pub".into()),
            private_key: Some(SecretString::from("very-private")),
            ..OpsManagerSettings::default()
        };
        let client = OpsManagerClient::from_settings(&settings);
        assert!(client.is_ok());
        if let Ok(client) = client {
            let shown = format!("{client:?}");
            assert!(
                !shown.contains("very-private") && shown.contains("pub"),
                "{shown}"
            );
        }
    }
}
