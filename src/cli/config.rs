//! `pincher config show`: the effective settings, every secret redacted; `pincher config
//! reference`: every setting with its default and meaning.

use clap::{Args, Subcommand, ValueEnum};

use super::{Outcome, with_stdout};
use crate::config::Settings;

/// `pincher config …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective settings (defaults, file, .env and environment merged).
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value = "toml")]
        output: ConfigFormat,
    },
    /// Print the reference of every setting (Markdown; docs/configuration.md is this output).
    Reference,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ConfigFormat {
    Toml,
    Json,
}

/// Runs the command.
pub fn run(opts: Opts, settings: &Settings) -> anyhow::Result<Outcome> {
    match opts.command {
        ConfigCommand::Show { output } => {
            let text = match output {
                ConfigFormat::Toml => toml::to_string_pretty(settings)?,
                ConfigFormat::Json => serde_json::to_string_pretty(settings)? + "\n",
            };
            with_stdout(|out| out.write_all(text.as_bytes()))?;
        }
        ConfigCommand::Reference => {
            let text = crate::config::reference::markdown();
            with_stdout(|out| out.write_all(text.as_bytes()))?;
        }
    }
    Ok(Outcome::Success)
}
