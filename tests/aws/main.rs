//! AWS report tests: the built `pincher` binary (CLI and `serve`) against a moto server, each
//! test in an organization of its own.

#[path = "../support/mod.rs"]
mod support;

mod cost;
mod dashboard;
mod ec2;
mod fixes;
mod harness;
mod inventory;
mod power;
mod rules;
mod savings;
mod scale;
mod storage;
