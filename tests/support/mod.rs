//! Test peers and fixtures shared by the integration test binaries.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod database;
pub mod moto;
