//! Secret-bearing setting types: their `Debug` and `Serialize` forms never show the secret.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text shown in place of any secret.
pub const REDACTED: &str = "[redacted]";

/// Serializes an optional secret as `"[redacted]"` (or `null` when unset).
pub fn redact_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str(REDACTED),
        None => serializer.serialize_none(),
    }
}

/// Query parameters whose values are shown: connection options that are never secret.
/// Every other parameter's value is redacted, whatever its name.
const SHOWN_PARAMETERS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "connect_timeout",
    "options",
    "host",
    "port",
    "dbname",
    "user",
    "mode",
    "cache",
    "statement-cache-capacity",
    "target_session_attrs",
    "region",
];

/// A URL with its user-info password and every query value not known to be harmless
/// replaced by `redacted`; text that is not a URL is redacted whole.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return REDACTED.to_owned();
    };
    if url.password().is_some() {
        // Only fails for URLs that cannot carry a password, which this one does.
        let _ = url.set_password(Some("redacted"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let shown = SHOWN_PARAMETERS.contains(&key.to_ascii_lowercase().as_str());
                let value = if shown {
                    value.into_owned()
                } else {
                    "redacted".into()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Serializes an optional URL setting through [`redact_url`].
pub fn redact_url_setting<S: Serializer>(
    value: &Option<url::Url>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => serializer.serialize_str(&redact_url(url.as_str())),
        None => serializer.serialize_none(),
    }
}

/// A database URL whose password is never shown: `Debug` and `Serialize` mask it.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL string.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL itself, password included; hand it only to the database driver.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password, in the user info or the query, replaced by `redacted`.
    pub fn redacted(&self) -> String {
        redact_url(self.expose())
    }

    /// Whether the URL points at PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        let url = self.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_masked_in_every_form() {
        let url = DatabaseUrl::new("postgres://app:hunter2@db.internal:5432/pincher");
        assert_eq!(
            url.redacted(),
            "postgres://app:redacted@db.internal:5432/pincher"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let json = serde_json::to_string(&url).unwrap_or_default();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("db.internal"));
    }

    #[test]
    fn query_string_passwords_are_masked() {
        let url = DatabaseUrl::new(
            "postgres://u@db.internal/pincher?password=hunter2&sslmode=require&sslpassword=k2",
        );
        let shown = url.redacted();
        assert!(
            !shown.contains("hunter2") && !shown.contains("k2"),
            "{shown}"
        );
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert_eq!(
            redact_url("https://om.example/api?apiKey=abc&x=1"),
            "https://om.example/api?apiKey=redacted&x=redacted"
        );
        assert_eq!(redact_url("not a url hunter2"), REDACTED);
    }

    #[test]
    fn sqlite_urls_are_shown_as_they_are() {
        let url = DatabaseUrl::new("sqlite://pincher.db");
        assert_eq!(url.redacted(), "sqlite://pincher.db");
        assert!(!url.is_postgres());
    }
}
