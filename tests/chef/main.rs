//! Chef tests against a real Chef server: the goiardi that `scripts/peers/goiardi.sh` starts
//! with authentication on. Nodes are made through pincher's own signed client.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod client;
mod reconcile;
mod search;
