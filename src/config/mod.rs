//! Settings, loaded once from defaults, an optional TOML file, `.env` and `PINCHER_*`
//! environment variables, validated up front; and the tracing subscriber set up from them.

pub mod limits;
pub mod logging;
pub mod reference;
mod secret;
mod settings;
pub mod telemetry;

pub use limits::Limits;
pub use logging::LogFormat;
pub use secret::{DatabaseUrl, redact_secret, redact_url};
pub use settings::*;
