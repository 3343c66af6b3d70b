//! Command-line tests: the built `pincher` binary run as a user would, against a fresh SQLite
//! and PostgreSQL database.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod config;
mod rules;
mod serve;
mod services;
