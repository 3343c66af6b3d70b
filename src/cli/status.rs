//! `pincher status`: the same dependency checks as `/status`, run from here.

use clap::Args;

use super::{Outcome, with_stdout};
use crate::app::Context;
use crate::config::Settings;
use crate::health::{self, HealthStatus};
use crate::render::{OutputFormat, write_json, write_table};

/// `pincher status`
#[derive(Debug, Args)]
pub struct Opts {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
}

/// Runs every check; exits 1 when the overall status is `fail`.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let ctx = Context::new(settings)?;
    let health = health::check_now(&ctx).await;
    with_stdout(|out| match opts.output {
        OutputFormat::Json => write_json(out, &health),
        OutputFormat::Table => {
            writeln!(
                out,
                "status: {}",
                serde_json::to_value(health.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )?;
            write_table(
                out,
                &["check", "status", "latency ms", "output"],
                health
                    .checks
                    .iter()
                    .flat_map(|(name, checks)| checks.iter().map(move |c| (name, c)))
                    .map(|(name, c)| {
                        vec![
                            name.clone(),
                            format!("{:?}", c.status).to_lowercase(),
                            format!("{:.1}", c.observed_value),
                            c.output.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            )
        }
    })?;
    ctx.db.close().await;
    if health.status == HealthStatus::Fail {
        Ok(Outcome::Failure)
    } else {
        Ok(Outcome::Success)
    }
}
