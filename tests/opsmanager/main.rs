//! Ops Manager backups end to end: the built `pincher` binary and the HTTP routes against the
//! in-process fake Ops Manager, on SQLite and PostgreSQL where the database is involved.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod backup;
mod backups;
mod client;
mod harness;
mod hostile;
mod rules;
mod s3;
mod s3_harness;
mod storage_faults;
