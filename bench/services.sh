#!/usr/bin/env bash
# Load benchmark of the services API (wrk, 64 connections), on SQLite and PostgreSQL, against
# a bare axum + sqlx handler and a Flask + SQLAlchemy one, plus /metrics and /status latency
# while the load runs and pincher's idle and loaded RSS. Prints a Markdown table; raw wrk
# output goes to $BENCH_OUT (default: a temp dir). Loopback only, bounded in time.
#
#   ./bench/services.sh            BENCH_DURATION=10s BENCH_SERVICES=1000 by default
#   BENCH_BIN=/path/to/pincher     another pincher build, BENCH_BARE=/path/to/bare_axum another
#                                  baseline (default: release builds of this tree; when both are
#                                  given, nothing is built)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${BENCH_DURATION:-10s}
seed=${BENCH_SERVICES:-1000}
conns=64
# The same SQLite pool size for pincher and the bare handler, so only the code differs.
pool=${BENCH_POOL:-16}
out=${BENCH_OUT:-$(mktemp -d -t pincher-bench.XXXXXX)}
mkdir -p "$out"
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/pincher-target ]; then
  export CARGO_TARGET_DIR=/var/tmp/pincher-target
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
pg_admin=${PINCHER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${BENCH_BIN:-}" ] || [ -z "${BENCH_BARE:-}" ]; then
  cargo build --quiet --release --bin pincher --example bare_axum
fi
bin=${BENCH_BIN:-$target_dir/release/pincher}
bare=${BENCH_BARE:-$target_dir/release/examples/bare_axum}
venv=$target_dir/peers/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check flask sqlalchemy gunicorn

. bench/lib.sh
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# wrk_run NAME URL [wrk args…]: runs wrk, keeps its output, prints "rps p50 p99".
wrk_run() {
  local name=$1 url=$2; shift 2
  wrk --latency -t2 -c"$conns" -d"$duration" "$@" "$url" > "$out/$name.txt"
  if grep -q 'Non-2xx' "$out/$name.txt"; then
    echo "bench: $name got non-2xx answers: $(grep 'Non-2xx' "$out/$name.txt")" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s %s %s", rps, p50, p99}' "$out/$name.txt"
}
probe_latency() { # URL: p50 and p99 of one connection polling URL for the duration
  wrk --latency -t1 -c1 -d"$duration" "$1" > "$out/probe-$(echo "$1" | tr -c 'a-z0-9' _).txt"
  awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s %s", p50, p99}' "$out/probe-$(echo "$1" | tr -c 'a-z0-9' _).txt"
}

results=()
run_pincher() { # BACKEND URL
  local backend=$1 url=$2 port pid ids peak rss_idle get post metrics status
  port=$(free_port)
  token=$(PINCHER_DATABASE__URL=$url "$bin" tokens create --name "bench-$$" --scope admin 2>/dev/null)
  auth="Authorization: Bearer $token"
  PINCHER_DATABASE__URL=$url PINCHER_LOG=warn PINCHER_DATABASE__MAX_CONNECTIONS=$pool \
    "$bin" serve --port "$port" 2>"$out/pincher-$backend.log" &
  pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$port/status/ready"
  ids=$out/ids-$backend.txt
  seq 1 "$seed" | xargs -P 8 -I{} curl -s -H "$auth" -H 'content-type: application/json' \
    -d '{"name":"svc-{}","owner":"bench","tags":{"service":"svc-{}"}}' "http://127.0.0.1:$port/services" \
    | grep -o '"id":"[^"]*"' | cut -d'"' -f4 > "$ids"
  sleep 1
  rss_idle=$(rss_kib "$pid")
  peak=$rss_idle
  ( while kill -0 "$pid" 2>/dev/null; do r=$(rss_kib "$pid" || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$out/peak-$backend"; sleep 0.2; done ) &
  pids+=("$!")
  # Throughput on its own, as the baselines are measured; the probes get runs of their own.
  get=$(BENCH_IDS=$ids wrk_run "get-$backend" "http://127.0.0.1:$port" -H "$auth" -s bench/get_random.lua)
  BENCH_IDS=$ids wrk_run "metrics-load-$backend" "http://127.0.0.1:$port" -H "$auth" -s bench/get_random.lua > /dev/null &
  local wrk_pid=$!
  sleep 1
  metrics=$(probe_latency "http://127.0.0.1:$port/metrics")
  wait "$wrk_pid"
  BENCH_IDS=$ids wrk_run "status-load-$backend" "http://127.0.0.1:$port" -H "$auth" -s bench/get_random.lua > /dev/null &
  wrk_pid=$!
  sleep 1
  status=$(probe_latency "http://127.0.0.1:$port/status")
  wait "$wrk_pid"
  post=$(wrk_run "post-$backend" "http://127.0.0.1:$port" -H "$auth" -s bench/post_unique.lua)
  local loaded; loaded=$(cat "$out/peak-$backend" 2>/dev/null || echo "$rss_idle")
  results+=("| pincher $backend | GET /services/{id} | $get |")
  results+=("| pincher $backend | POST /services | $post |")
  results+=("| pincher $backend | GET /metrics under GET load (1 conn) | - $metrics |")
  results+=("| pincher $backend | GET /status under GET load (1 conn) | - $status |")
  results+=("| pincher $backend | RSS idle / peak under load | $((rss_idle / 1024)) MiB / $((loaded / 1024)) MiB | |")
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

sqlite_url="sqlite://$work/bench.db"
run_pincher sqlite "$sqlite_url"

pg_db=pincher_bench_$$
psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
run_pincher postgres "${pg_admin%/*}/$pg_db"
psql "$pg_admin" -qc "DROP DATABASE $pg_db WITH (FORCE)" >/dev/null

# Baselines on the same SQLite file and ids.
port=$(free_port)
"$bare" "$sqlite_url" "$port" "$pool" & pids+=("$!")
wait_http "http://127.0.0.1:$port/services/$(head -n1 "$out/ids-sqlite.txt")"
results+=("| bare axum + sqlx, sqlite, pool of $pool with pincher's options | GET /services/{id} | $(BENCH_IDS=$out/ids-sqlite.txt wrk_run get-bare "http://127.0.0.1:$port" -s bench/get_random.lua) |")
port=$(free_port)
"$bare" "$sqlite_url" "$port" default & pids+=("$!")
wait_http "http://127.0.0.1:$port/services/$(head -n1 "$out/ids-sqlite.txt")"
results+=("| bare axum + sqlx, sqlite, sqlx's default pool | GET /services/{id} | $(BENCH_IDS=$out/ids-sqlite.txt wrk_run get-bare-default "http://127.0.0.1:$port" -s bench/get_random.lua) |")

port=$(free_port)
BENCH_SQLITE_URL="sqlite:///$work/bench.db" "$venv/bin/gunicorn" -w "$(nproc)" -b "127.0.0.1:$port" \
  --chdir bench flask_app:app 2>"$out/gunicorn.log" & pids+=("$!")
wait_http "http://127.0.0.1:$port/services/$(head -n1 "$out/ids-sqlite.txt")"
results+=("| Flask + SQLAlchemy (gunicorn, $(nproc) workers), sqlite | GET /services/{id} | $(BENCH_IDS=$out/ids-sqlite.txt wrk_run get-flask "http://127.0.0.1:$port" -s bench/get_random.lua) |")

echo "wrk -t2 -c$conns -d$duration; $seed services; pool $pool; raw output in $out"
echo
echo "| server | request | req/s · p50 · p99 |"
echo "| --- | --- | --- |"
printf '%s\n' "${results[@]}" | sed 's/| \([0-9.]*\) \([0-9.a-z]*\) \([0-9.a-z]*\) |$/| \1 req\/s · p50 \2 · p99 \3 |/; s/| - \([0-9.a-z]*\) \([0-9.a-z]*\) |$/| p50 \1 · p99 \2 |/'
