#!/usr/bin/env bash
# One route of pincher against the bare axum + sqlx handler (examples/bare_axum.rs) in
# alternating short wrk runs on one database, so that drift of a shared machine hits both
# alike. Prints each pair, then the median of the per-pair ratios and the server CPU time per
# request (user and total, from /proc/PID/stat). Loopback only.
#
#   ./bench/pairs.sh            BENCH_PAIRS=14 BENCH_DURATION=4s BENCH_POOL=16 by default
#   BENCH_TARGET=get|live|post  GET /services/{id} (1,000 services, ids at random; the default),
#                               GET /status/live (no database) or POST /services (unique names;
#                               use with BENCH_BASELINE, the bare handler does not write)
#   BENCH_BACKEND=sqlite|postgres
#                               the database of both servers (PostgreSQL: a fresh database on
#                               $PINCHER_TEST_POSTGRES_URL's server, dropped at the end)
#   BENCH_BARE_POOL=N|default   the bare handler's pool: N connections with pincher's options
#                               (BENCH_POOL by default), or `default`, sqlx's defaults
#   BENCH_BIN=/path/to/pincher  the pincher build to measure, BENCH_BARE=/path/to/bare_axum the
#                               baseline (default: release builds of this tree; when both are
#                               given, nothing is built)
#   BENCH_BASELINE=/path/to/an/older/pincher ./bench/pairs.sh
#                               the same, against another pincher build instead of the bare
#                               handler (`serve` on the same database), to compare two versions
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${BENCH_PAIRS:-14}
duration=${BENCH_DURATION:-4s}
pool=${BENCH_POOL:-16}
baseline=${BENCH_BASELINE:-}
target=${BENCH_TARGET:-get}
backend=${BENCH_BACKEND:-sqlite}
bare_pool=${BENCH_BARE_POOL:-$pool}
pg_admin=${PINCHER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/pincher-target ]; then
  export CARGO_TARGET_DIR=/var/tmp/pincher-target
fi
target_dir=${CARGO_TARGET_DIR:-$(pwd)/target}
command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${BENCH_BIN:-}" ] || [ -z "${BENCH_BARE:-}" ]; then
  cargo build --quiet --release --bin pincher --example bare_axum
fi
bin=${BENCH_BIN:-$target_dir/release/pincher}
bare=${BENCH_BARE:-$target_dir/release/examples/bare_axum}

. bench/lib.sh

# A baseline build gets its own database: its schema may be older than this build's.
case $backend in
  sqlite) url="sqlite://$work/bench.db" url_b="sqlite://$work/baseline.db" ;;
  postgres)
    pg_db=pincher_pairs_$$
    psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
    psql "$pg_admin" -qc "CREATE DATABASE ${pg_db}_b" >/dev/null
    trap 'cleanup; for d in $pg_db ${pg_db}_b; do psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null; done' EXIT
    url="${pg_admin%/*}/$pg_db" url_b="${pg_admin%/*}/${pg_db}_b" ;;
  *) echo "bench: BENCH_BACKEND is sqlite or postgres" >&2; exit 2 ;;
esac
export PINCHER_DATABASE__URL=$url PINCHER_LOG=warn PINCHER_DATABASE__MAX_CONNECTIONS=$pool
token=$("$bin" tokens create --name bench --scope admin 2>/dev/null)
auth="Authorization: Bearer $token"
pport=$(free_port)
"$bin" serve --port "$pport" 2>"$work/pincher.log" & pids+=("$!"); ppid=$!
wait_http "http://127.0.0.1:$pport/status/ready"
# seed PORT TOKEN IDS_FILE: 1,000 services, their ids into IDS_FILE.
seed() {
  seq 1 1000 | xargs -P 8 -I{} curl -s -H "Authorization: Bearer $2" -H 'content-type: application/json' \
    -d '{"name":"svc-{}","owner":"bench","tags":{"service":"svc-{}"}}' "http://127.0.0.1:$1/services" \
    | grep -o '"id":"[^"]*"' | cut -d'"' -f4 > "$3"
}
seed "$pport" "$token" "$work/ids.txt"
bport=$(free_port)
if [ -n "$baseline" ]; then
  other=baseline
  token_b=$(PINCHER_DATABASE__URL=$url_b "$baseline" tokens create --name bench --scope admin 2>/dev/null)
  PINCHER_DATABASE__URL=$url_b "$baseline" serve --port "$bport" 2>"$work/baseline.log" & pids+=("$!"); bpid=$!
  wait_http "http://127.0.0.1:$bport/status/ready"
  seed "$bport" "$token_b" "$work/ids-b.txt"
  auth_b="Authorization: Bearer $token_b"
else
  other=bare
  "$bare" "$url" "$bport" "$bare_pool" & pids+=("$!"); bpid=$!
  cp "$work/ids.txt" "$work/ids-b.txt"
  auth_b=$auth
fi
wait_http "http://127.0.0.1:$bport/services/$(head -n1 "$work/ids-b.txt")"
case $target in
  get) script=(-s bench/get_random.lua); path= ;;
  live) script=(); path=/status/live ;;
  post) script=(-s bench/post_unique.lua); path= ;;
  *) echo "bench: BENCH_TARGET is get, live or post" >&2; exit 2 ;;
esac
echo "$target on $backend; pincher $bin against $other (pool $bare_pool); $pairs pairs of $duration"

ticks() { awk -v f="$2" '{print (f == "user") ? $14 : $14 + $15}' "/proc/$1/stat"; }
# run NAME PID PORT IDS AUTH: one wrk run with the server's ids file and bearer header;
# prints "NAME rps user_us total_us p99_ms"
run() {
  local u0 c0 out n request=("${script[@]}")
  export BENCH_IDS=$4
  [ "$target" = live ] || request+=(-H "$5")
  u0=$(ticks "$2" user); c0=$(ticks "$2" all)
  out=$(wrk --latency -t2 -c64 -d"$duration" "${request[@]}" "http://127.0.0.1:$3$path")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | grep -q 'Non-2xx' && { echo "bench: $1 got non-2xx answers" >&2; exit 1; }
  echo "$1 $(echo "$out" | awk '/Requests\/sec/ {print $2}') \
$(( ($(ticks "$2" user) - u0) * 1000000 / $(getconf CLK_TCK) * 100 / n ))e-2 \
$(( ($(ticks "$2" all) - c0) * 1000000 / $(getconf CLK_TCK) * 100 / n ))e-2 \
$(echo "$out" | awk '/^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us$/, "", v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v*=1000}; print v}')"
}
p=("$ppid" "$pport" "$work/ids.txt" "$auth")
b=("$bpid" "$bport" "$work/ids-b.txt" "$auth_b")
run warm "${p[@]}" >/dev/null
run warm "${b[@]}" >/dev/null
for i in $(seq 1 "$pairs"); do
  if ((i % 2)); then run pincher "${p[@]}"; run "$other" "${b[@]}"
  else run "$other" "${b[@]}"; run pincher "${p[@]}"; fi
done | tee "$work/pairs.txt"
python3 - "$work/pairs.txt" "$other" <<'EOF'
import statistics as st, sys
other = sys.argv[2]
rows = [line.split() for line in open(sys.argv[1])]
p = [r for r in rows if r[0] == "pincher"]
b = [r for r in rows if r[0] == other]
ratio = [float(x[1]) / float(y[1]) for x, y in zip(p, b)]
med = lambda rs, i: st.median(float(r[i]) for r in rs)
print(f"\n{len(ratio)} pairs; pincher/{other} req/s: median {st.median(ratio):.3f} "
      f"(min {min(ratio):.3f}, max {max(ratio):.3f})")
print(f"median req/s: pincher {med(p, 1):,.0f}, {other} {med(b, 1):,.0f}")
print(f"median server CPU per request: pincher {med(p, 2):.1f} us user / {med(p, 3):.1f} us total, "
      f"{other} {med(b, 2):.1f} us user / {med(b, 3):.1f} us total")
print(f"median p99 latency: pincher {med(p, 4):.2f} ms, {other} {med(b, 4):.2f} ms")
EOF
