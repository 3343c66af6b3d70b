//! pincher: a service registry, cloud cost reports and ops-config backups, served over HTTP
//! and driven from the command line over one plugin layer.

pub mod actions;
pub mod app;
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod domain;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod plugins;
pub mod render;
pub mod report;
pub mod routes;
pub mod scheduler;
pub mod server;
