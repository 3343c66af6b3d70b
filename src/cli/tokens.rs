//! `pincher tokens create|list|revoke`: API tokens, through the same repository as `/tokens`.

use clap::{Args, Subcommand};

use super::{Outcome, UsageError, open_database, with_stdout};
use crate::config::Settings;
use crate::db::tokens as repo;
use crate::domain::token::{self, Scope, TokenName};
use crate::render::{OutputFormat, write_json, write_table};

/// `pincher tokens …`
#[derive(Debug, Args)]
pub struct Opts {
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// Unique name saying who or what uses it.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        scope: Scope,
        /// Make it stop working after this many days.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Revoke a token by id or name.
    Revoke {
        /// Id or name.
        token: String,
    },
}

/// Runs the command.
pub async fn run(opts: Opts, settings: Settings) -> anyhow::Result<Outcome> {
    let db = open_database(&settings).await?;
    match opts.command {
        TokensCommand::Create {
            name,
            scope,
            expires_in_days,
        } => {
            let name = TokenName::parse(&name).map_err(|m| UsageError(format!("--name: {m}")))?;
            let expires_at = expires_in_days.map(|days| {
                time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days))
            });
            let new = token::generate()?;
            let record = repo::create(
                &db,
                name.as_str(),
                scope,
                &new.hash,
                &new.prefix,
                expires_at,
            )
            .await?;
            eprintln!(
                "created token {:?} with scope {}; it is shown only now:",
                record.name, record.scope
            );
            with_stdout(|out| writeln!(out, "{}", new.expose()))?;
        }
        TokensCommand::List { output } => {
            let tokens = repo::list(&db).await?;
            with_stdout(|out| match output {
                OutputFormat::Json => write_json(out, &tokens),
                OutputFormat::Table => write_table(
                    out,
                    &[
                        "name",
                        "scope",
                        "prefix",
                        "created",
                        "expires",
                        "last used",
                        "revoked",
                    ],
                    tokens
                        .iter()
                        .map(|t| {
                            let format = |t: time::OffsetDateTime| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .unwrap_or_default()
                            };
                            vec![
                                t.name.clone(),
                                t.scope.to_string(),
                                format!("{}…", t.prefix),
                                format(t.created_at),
                                t.expires_at.map(format).unwrap_or_default(),
                                t.last_used_at.map(format).unwrap_or_default(),
                                t.revoked_at.map(format).unwrap_or_default(),
                            ]
                        })
                        .collect(),
                ),
            })?;
        }
        TokensCommand::Revoke { token } => {
            let record = repo::revoke(&db, &token).await?;
            with_stdout(|out| writeln!(out, "revoked token {:?} ({})", record.name, record.id))?;
        }
    }
    db.close().await;
    Ok(Outcome::Success)
}
