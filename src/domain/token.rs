//! API tokens: high-entropy bearer secrets with a scope. Only their SHA-256 hash is stored.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of every token, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "pincher_";

/// What a token may do. Each scope includes the ones below it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read any resource.
    Read,
    /// Read, create, change and delete resources.
    Write,
    /// Everything, including managing tokens.
    Admin,
}

impl Scope {
    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown scope {other:?}; expected read, write or admin"
            )),
        }
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's name: 1 to 128 characters, not only spaces, no NUL (PostgreSQL cannot store
/// one). The same rule for `pincher tokens create` and `POST /tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    /// Checks `text` against the rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains('\0') {
            Err("must not contain NUL characters".into())
        } else if text.trim().is_empty() || text.chars().count() > 128 {
            Err("must be 1 to 128 characters".into())
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    /// Identifier.
    pub id: Uuid,
    /// Unique name, saying who or what uses it.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When it stops working, if it expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When a replica last verified it against the database: its last use, give or take
    /// `auth.token_cache_ttl_secs`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Parses a token's expiry: an RFC 3339 date-time after `now`, within
/// `limits.latest_date`.
pub fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 date-time such as 2027-01-31T00:00:00Z: {e}"))?;
    if at <= now {
        return Err(format!("{text} is not in the future"));
    }
    crate::config::limits::current().check_date(at.to_offset(time::UtcOffset::UTC).date())?;
    Ok(at.to_offset(time::UtcOffset::UTC))
}

/// A newly generated token: the secret (shown once) and what is stored of it.
pub struct NewToken {
    /// The bearer token itself.
    pub secret: SecretString,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// The token's recognisable start.
    pub prefix: String,
}

/// Generates a token with 256 bits of randomness.
pub fn generate() -> Result<NewToken, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    let prefix = token[..TOKEN_PREFIX.len() + 6].to_owned();
    Ok(NewToken {
        secret: SecretString::from(token),
        hash,
        prefix,
    })
}

/// Whether `token` has the shape of a generated token (the prefix and 43 base64url
/// characters); anything else is refused without a database lookup.
pub fn well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of a presented token. Tokens are 256-bit random, so an unsalted fast hash is as
/// strong as a salted slow one here, and lets the database find the token by hash.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A [`digest`] as stored in the database: lowercase hex.
pub fn hex(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// [`hex`] of the [`digest`] of a token: what the database stores.
pub fn hash(token: &str) -> String {
    hex(&digest(token))
}

impl NewToken {
    /// The token text.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() -> Result<(), getrandom::Error> {
        let a = generate()?;
        let b = generate()?;
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(a.hash, hash(a.expose()));
        assert_eq!(a.hash.len(), 64);
        // Known answer (sha256sum of the same bytes): rows written earlier must still match.
        assert_eq!(
            hash("pincher_x"),
            "5ad30d246697ff197f6bacef073c8ec158d1693d4c63b70d7cea82976bc1d04a"
        );
        assert!(a.expose().starts_with(&a.prefix));
        assert!(well_formed(a.expose()));
        assert!(!well_formed("pincher_x"));
        assert!(!well_formed(&format!("other_{}", &a.expose()[8..])));
        Ok(())
    }

    #[test]
    fn token_names_are_one_rule() {
        assert!(TokenName::parse("ci-deploy").is_ok());
        assert!(TokenName::parse("  ").is_err());
        assert!(TokenName::parse("a\0b").is_err());
        assert!(TokenName::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
        assert_eq!(Scope::parse("write"), Ok(Scope::Write));
        assert!(Scope::parse("root").is_err());
    }
}
