#!/usr/bin/env bash
# Instructions per GET /services/{id}: pincher against the bare axum + sqlx handler
# (examples/bare_axum.rs), counted by valgrind's callgrind over a fixed keep-alive client.
# Instruction counts do not move with the load of a shared machine, unlike req/s; they do not
# see cache misses or contention between cores (bench/pairs.sh measures those).
#
#   ./bench/instructions.sh     BENCH_REQUESTS=2000, BENCH_PROFILE=profiling (symbols, for
#                               callgrind_annotate) by default; callgrind files stay in $BENCH_OUT
#   BENCH_TARGET=live           GET /status/live instead (no database), pincher against the bare
#                               handler's /status/live serving the same body
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${BENCH_REQUESTS:-2000}
target=${BENCH_TARGET:-get}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/pincher-target ]; then
  export CARGO_TARGET_DIR=/var/tmp/pincher-target
fi
target_dir=${CARGO_TARGET_DIR:-$(pwd)/target}
for tool in valgrind callgrind_control python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install valgrind)" >&2; exit 1; }
done
profile=${BENCH_PROFILE:-profiling}
cargo build --quiet --profile "$profile" --bin pincher --example bare_axum
bin=$target_dir/$profile/pincher
bare=$target_dir/$profile/examples/bare_axum
out=${BENCH_OUT:-$(mktemp -d -t pincher-instructions.XXXXXX)}
mkdir -p "$out"
. bench/lib.sh

url="sqlite://$work/bench.db"
export PINCHER_DATABASE__URL=$url PINCHER_LOG=warn PINCHER_DATABASE__MAX_CONNECTIONS=16
token=$("$bin" tokens create --name bench --scope admin 2>/dev/null)
port=$(free_port)
"$bin" serve --port "$port" 2>"$work/seed.log" & seed=$!
wait_http "http://127.0.0.1:$port/status/ready"
seq 1 200 | xargs -P 4 -I{} curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"svc-{}","owner":"bench","tags":{"service":"svc-{}"}}' "http://127.0.0.1:$port/services" \
  | grep -o '"id":"[^"]*"' | cut -d'"' -f4 > "$work/ids.txt"
kill "$seed"; wait "$seed" 2>/dev/null || true

# count NAME TOKEN COMMAND...: instructions per request of the server COMMAND, whose {port}
# is replaced by a free port
count() {
  local name=$1 auth=$2 pid file
  shift 2
  port=$(free_port)
  local cmd=("${@//\{port\}/$port}")
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$name" "${cmd[@]}" \
    2>"$out/valgrind.$name.log" & pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$port/services/$(head -n1 "$work/ids.txt")" 60
  python3 bench/keepalive_client.py "$port" 300 "$auth" "$paths"
  callgrind_control -z "$pid" >/dev/null 2>&1
  python3 bench/keepalive_client.py "$port" "$requests" "$auth" "$paths"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  file=$(ls -t "$out"/callgrind."$name".* | grep -v '\.log$' | head -n1)
  echo "$name $(awk '/^(summary|totals):/ {print $2; exit}' "$file") $requests"
}
case $target in
  get) paths=$work/ids.txt; ptoken=$token ;;
  live) paths=/status/live; ptoken=- ;;
  *) echo "bench: BENCH_TARGET is get or live" >&2; exit 2 ;;
esac
{
  count pincher "$ptoken" "$bin" serve --port '{port}'
  count bare - "$bare" "$url" '{port}' 16
} | awk '{printf "%-8s %8.0f instructions per request\n", $1, $2 / $3}'
echo "callgrind files: $out (callgrind_annotate FILE)"
