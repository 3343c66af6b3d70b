//! `pincher db migrate|status`: the database schema.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Outcome, with_stdout};
use crate::config::Settings;
use crate::db::Db;
use crate::render::{OutputFormat, write_json, write_table};

/// `pincher db …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply every pending migration.
    Migrate,
    /// List applied and pending migrations.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let db = Db::connect(&settings.database)?;
    let target = settings.database.url.redacted();
    match opts.command {
        DbCommand::Migrate => {
            let before = db
                .migration_status()
                .await
                .with_context(|| format!("cannot read {target}"))?;
            db.migrate()
                .await
                .with_context(|| format!("cannot migrate {target}"))?;
            let applied = before.iter().filter(|m| !m.applied).count();
            with_stdout(|out| writeln!(out, "applied {applied} migration(s) to {target}"))?;
        }
        DbCommand::Status { output } => {
            let status = db
                .migration_status()
                .await
                .with_context(|| format!("cannot read {target}"))?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &status),
                OutputFormat::Table => write_table(
                    out,
                    &["version", "description", "state"],
                    status
                        .iter()
                        .map(|m| {
                            vec![
                                m.version.to_string(),
                                m.description.clone(),
                                if m.applied { "applied" } else { "pending" }.to_owned(),
                            ]
                        })
                        .collect(),
                ),
            })?;
        }
    }
    db.close().await;
    Ok(Outcome::Success)
}
