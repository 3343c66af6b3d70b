//! Test peers and fixtures shared by the integration test binaries.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod browser;
pub mod ce_forecast;
pub mod chef;
pub mod database;
pub mod moto;
pub mod opsmanager;
pub mod otlp;
pub mod private_postgres;
pub mod proxy;
pub mod recording;
pub mod server;
pub mod sqlite_lock;
