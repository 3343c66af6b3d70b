#!/usr/bin/env bash
# Times `pincher opsmanager backup --all-groups` over BENCH_GROUPS groups (default 50) against
# the fake Ops Manager (examples/fake_opsmanager.rs) on loopback, answering each call after
# BENCH_LATENCY_MS (default 0, then 50): wall time and peak RSS of a first run (every group
# stored) and a second run (every group unchanged). Prints Markdown rows for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
groups=${BENCH_GROUPS:-50}
latencies=${BENCH_LATENCY_MS:-"0 50"}
target=${CARGO_TARGET_DIR:-target}
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is needed (Debian: apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --bin pincher --example fake_opsmanager
bin=$target/release

work=$(mktemp -d -t pincher-bench.XXXXXX)
fake_pid=
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# measure LABEL: runs one backup, prints "| LABEL | wall s | peak RSS MiB |".
measure() {
  local label=$1 wall rss
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin/pincher" opsmanager backup --all-groups --quiet
  read -r wall rss < "$work/time"
  printf '| %s | %s | %s s | %.1f MiB |\n' "$label" "$concurrency" "$wall" "$(echo "$rss / 1024" | bc -l)"
}

echo "| run | concurrency | wall time | peak RSS |"
echo "| --- | --- | --- | --- |"
for latency in $latencies; do
  rm -f "$work/url"
  "$bin/examples/fake_opsmanager" "$groups" "$latency" > "$work/url" &
  fake_pid=$!
  for _ in $(seq 1 50); do [ -s "$work/url" ] && break; sleep 0.1; done
  [ -s "$work/url" ] || { echo "bench: the fake Ops Manager did not start" >&2; exit 1; }
  export PINCHER_OPSMANAGER__BASE_URL=$(cat "$work/url")
  export PINCHER_OPSMANAGER__PUBLIC_KEY=pincher-test-public
  export PINCHER_OPSMANAGER__PRIVATE_KEY=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
  export PINCHER_LOG=warn
  for concurrency in 4 16; do
    export PINCHER_OPSMANAGER__CONCURRENCY=$concurrency
    rm -rf "$work/backups" "$work/pincher.db"*
    export PINCHER_BACKUPS__DIR=$work/backups PINCHER_DATABASE__URL=sqlite://$work/pincher.db
    measure "$groups groups, ${latency} ms/call, first run (stored)"
    measure "$groups groups, ${latency} ms/call, second run (unchanged)"
  done
  kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; fake_pid=
done
