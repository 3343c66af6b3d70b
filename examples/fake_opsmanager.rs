//! The test suite's fake Ops Manager, standalone, for benchmarks and trying pincher by hand:
//! `cargo run --example fake_opsmanager -- 50 20` prints the base URL and serves 50 groups,
//! answering each call after 20 ms, until interrupted. Keys: `pincher-test-public` / the `PRIVATE_KEY` in tests/support/opsmanager.rs.

#[path = "../tests/support/opsmanager.rs"]
#[expect(
    dead_code,
    reason = "the standalone fake uses only part of the test switches"
)]
mod opsmanager;

use std::io::Write;

#[tokio::main]
async fn main() {
    let groups = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let latency_ms = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let fake = opsmanager::FakeOpsManager::start(groups).await;
    fake.set_latency(std::time::Duration::from_millis(latency_ms));
    println!("{}", fake.base_url);
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
}
