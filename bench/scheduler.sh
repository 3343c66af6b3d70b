#!/usr/bin/env bash
# The rules scheduler under contention: BENCH_DAEMONS `pincher daemon` replicas (default 2) on
# one fresh PostgreSQL database run a rule that fires every 2 seconds, for BENCH_SECONDS
# (default 30). Prints how many slots ran, were missed or ran twice, how many replicas claimed
# slots, and how long after its time each slot started (median, mean, max).
#
#   ./bench/scheduler.sh      needs PostgreSQL on 127.0.0.1:5432 (trust) and psql
set -euo pipefail
cd "$(dirname "$0")/.."
daemons=${BENCH_DAEMONS:-2}
seconds=${BENCH_SECONDS:-30}
admin=${PINCHER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/pincher-target ]; then
  export CARGO_TARGET_DIR=/var/tmp/pincher-target
fi
cargo build --quiet --release --bin pincher
bin=${CARGO_TARGET_DIR:-target}/release/pincher

. bench/lib.sh

db=pincher_bench_$$
psql -q "$admin" -c "CREATE DATABASE $db"
trap 'cleanup; psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
export PINCHER_DATABASE__URL=${admin%/*}/$db PINCHER_LOG=warn
# The step fails at once (Ops Manager is not configured): what is measured is the claim.
echo '{"name": "bench", "schedule": "*/2 * * * * *", "steps": [{"action": "opsmanager.backup"}]}' \
  > "$work/rule.json"
"$bin" rules apply "$work/rule.json" > /dev/null
for _ in $(seq 1 "$daemons"); do "$bin" daemon & pids+=("$!"); done
sleep "$seconds"
for p in "${pids[@]}"; do kill -TERM "$p"; done
wait
pids=()
psql -q "$PINCHER_DATABASE__URL" -At -F ' ' -c "
  SELECT count(*) FILTER (WHERE outcome <> 'missed') AS ran,
         count(*) FILTER (WHERE outcome = 'missed') AS missed,
         count(DISTINCT actor) FILTER (WHERE outcome <> 'missed') AS replicas,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for))::numeric * 1000) AS median_ms,
         round(avg(extract(epoch FROM started_at - scheduled_for))::numeric * 1000) AS mean_ms,
         round(max(extract(epoch FROM started_at - scheduled_for))::numeric * 1000) AS max_ms
  FROM rule_runs WHERE scheduled_for IS NOT NULL" \
  | { read -r ran missed replicas median mean max
      twice=$(psql -q "$PINCHER_DATABASE__URL" -At -c "SELECT count(*) FROM (SELECT 1 FROM rule_runs GROUP BY rule_id, scheduled_for HAVING count(*) > 1) d")
      echo "| $daemons | $seconds s | $ran | $missed | $twice | $replicas | $median / $mean / $max ms |"; }
