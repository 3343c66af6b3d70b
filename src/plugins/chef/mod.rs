//! Chef Server API access: a client that signs every request as mixlib-authentication
//! defines it ([`client`]), the node and search queries operators need ([`nodes`],
//! [`search`]) and the join of Chef nodes with the EC2 inventory ([`reconcile`]).

pub mod client;
pub mod nodes;
pub mod reconcile;
pub mod search;

pub use client::{ChefClient, ClientKey, ServerCheck, SignVersion};

/// Why a Chef operation failed. No variant ever carries key material.
#[derive(Debug, thiserror::Error)]
pub enum ChefError {
    /// A required `chef.*` setting is missing or unusable.
    #[error("invalid setting `{key}`: {message}")]
    Settings {
        /// Dotted name of the setting, e.g. `chef.client_key`.
        key: &'static str,
        /// What is wrong and the expected form.
        message: String,
    },
    /// The client key could not be read or is not an RSA private key.
    #[error("cannot use the Chef client key {path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// Why (never the key's contents).
        reason: String,
    },
    /// The request could not be signed with this key and protocol version.
    #[error("cannot sign the request with protocol {version}: {reason}")]
    Signing {
        /// The signing protocol version.
        version: &'static str,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or did not answer in time.
    #[error(
        "cannot reach the Chef server at {url}: {}",
        crate::plugins::sdk::describe_chain(source)
    )]
    Unreachable {
        /// The server URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server did not accept the request signature (HTTP 401).
    #[error(
        "the Chef server at {url} rejected the signature of `{client}` (401 Unauthorized: \
         {message}); check that chef.client_name names a client or user known to the server, \
         that chef.client_key is its private key and that this machine's clock is right"
    )]
    Authentication {
        /// The server URL.
        url: String,
        /// The client name that signed.
        client: String,
        /// The server's explanation.
        message: String,
    },
    /// The signature was accepted but the client may not do this (HTTP 403).
    #[error(
        "`{client}` is not allowed to {operation} on the Chef server (403 Forbidden: {message})"
    )]
    Forbidden {
        /// The client name that signed.
        client: String,
        /// What was attempted.
        operation: &'static str,
        /// The server's explanation.
        message: String,
    },
    /// The object does not exist (HTTP 404).
    #[error("not found on the Chef server: {path}")]
    NotFound {
        /// The request path.
        path: String,
    },
    /// The object already exists (HTTP 409).
    #[error("already exists on the Chef server: {path}")]
    Conflict {
        /// The request path.
        path: String,
    },
    /// Any other error status.
    #[error("the Chef server answered {status} to {operation}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What was attempted.
        operation: &'static str,
        /// The server's explanation.
        message: String,
    },
    /// The answer is not what the Chef Server API documents.
    #[error("unexpected answer from the Chef server to {operation}: {reason}")]
    InvalidResponse {
        /// What was attempted.
        operation: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A query argument is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
}
