//! HTTP API tests: the app runs on port 0 against a fresh SQLite and PostgreSQL database.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod actions;
mod auth;
mod dashboard;
mod helpers;
mod index;
mod limits;
mod matrix;
mod observability;
mod openapi;
mod rules;
mod services;
mod traces;
