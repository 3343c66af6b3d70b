//! Fault tests: the service under load while its database stops and comes back, and while it
//! is told to stop. Nothing accepted may be lost or cut off.

#[path = "../support/mod.rs"]
mod support;

mod postgres_outage;
mod postgres_tls;
mod sigterm;
