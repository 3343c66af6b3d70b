#!/usr/bin/env bash
# `pincher aws --all-accounts --regions (4) ec2 report` over an organisation of 50 member
# accounts (Organizations + AssumeRole) on moto, behind a proxy that adds a fixed delay to
# every call (default 50 ms) and answers a share of them (default 5 %) as AWS does when it
# throttles (bench/throttle_proxy.py). Reports pincher's wall time against the bound
# calls × delay / concurrency, the throttled calls it retried, and whether every account ×
# region part is present; then the same for c7n-org (PyPI) running an EC2 query policy on the
# same organisation through the same proxy, when it installs here.
#
#   bench/org_scale.sh [PINCHER_BINARY]    (default: target/release/pincher)
#   ACCOUNTS=50 INSTANCES=5 DELAY_MS=50 SHARE=0.05 CONCURRENCY=16 bench/org_scale.sh
#   BUCKET=10:20 also throttles as AWS does: 10 calls/s per account, region and service, in
#   bursts of up to 20 (SHARE=0 BUCKET=… leaves only that)
#   C7N=0 skips c7n-org; PINCHER_AWS__RETRY_MODE=standard and the like reach pincher.
#   BASELINE=path/to/other/pincher runs another build in turn with this one; RUNS=3 each.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target_dir=${CARGO_TARGET_DIR:-target}
pincher=${1:-$target_dir/release/pincher}
[ -x "$pincher" ] || { echo "build pincher first (cargo build --release)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 1; }
accounts=${ACCOUNTS:-50} instances=${INSTANCES:-5} delay=${DELAY_MS:-50} share=${SHARE:-0.05}
concurrency=${CONCURRENCY:-16}
regions=(us-east-1 us-west-2 eu-west-1 ap-southeast-2)

venv=$target_dir/peers/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
[ -x "$venv/bin/moto_server" ] || "$venv/bin/pip" install -q 'moto[server]'

moto_port=$(free_port) proxy_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 & pids+=($!)
moto=http://127.0.0.1:$moto_port
wait_http "$moto/moto-api/" 30
"$venv/bin/python" bench/throttle_proxy.py "$proxy_port" "$moto" "$delay" "$share" 20261202 "${BUCKET:-}" & pids+=($!)
proxy=http://127.0.0.1:$proxy_port
wait_http "$proxy/__stats"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

# The organisation, straight on moto: the management account and $accounts members, each
# with $instances instances in each region.
"$venv/bin/python" - "$moto" "$accounts" "$instances" "${regions[@]}" >"$work/accounts" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
url, accounts, instances, regions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
org = boto3.client("organizations", endpoint_url=url)
org.create_organization(FeatureSet="ALL")
ids = [boto3.client("sts", endpoint_url=url).get_caller_identity()["Account"]]
for i in range(accounts):
    status = org.create_account(AccountName=f"member-{i}", Email=f"m{i}@example.com")["CreateAccountStatus"]
    ids.append(status["AccountId"])
def launch(account):
    creds = boto3.client("sts", endpoint_url=url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="bench")["Credentials"]
    for region in regions:
        boto3.client("ec2", region_name=region, endpoint_url=url, aws_access_key_id=creds["AccessKeyId"],
                     aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"]
                     ).run_instances(ImageId="ami-12c6146b", MinCount=instances, MaxCount=instances, InstanceType="t3.micro")
with ThreadPoolExecutor(8) as pool:
    list(pool.map(launch, ids))
print("\n".join(ids))
PY
parts=$(( $(wc -l <"$work/accounts") * ${#regions[@]} ))
expected=$(( parts * instances ))
list=$(IFS=,; echo "${regions[*]}")
echo "organisation: $(wc -l <"$work/accounts") accounts x ${#regions[@]} regions = $parts parts, $expected instances"
echo "proxy: ${delay} ms per call, ${share} of calls throttled${BUCKET:+, buckets of ${BUCKET} (rate:burst) per account, region and service}; pincher: $pincher, aws.concurrency=$concurrency"

stats() { curl -s "$proxy/__stats"; }
report() {  # report WHAT WALL CALLS THROTTLED PARTS_OK
  python3 - "$@" "$delay" "$concurrency" <<'PY'
import sys
what, wall, calls, throttled, ok, delay, conc = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), int(sys.argv[7])
bound = calls * delay / 1000 / conc
ratio = f"{wall / bound:5.2f}" if bound else "    -"
print(f"{what:<28} wall {wall:6.2f}s  calls {calls:5d}  throttled {throttled:4d}  bound {bound:6.2f}s  wall/bound {ratio}  {ok}")
PY
}

run_pincher() {  # run_pincher LABEL BINARY
  curl -s -X POST "$proxy/__reset" >/dev/null
  PINCHER_AWS__ENDPOINT_URL=$proxy PINCHER_AWS__CONCURRENCY=$concurrency \
    PINCHER_DATABASE__URL=sqlite://$work/pincher.db \
    /usr/bin/time -f "%e %M" -o "$work/time" \
    "$2" aws --all-accounts --regions "$list" ec2 report --output json >"$work/report.json" 2>"$work/err" || true
  read -r wall rss < <(tail -n 1 "$work/time")
  read -r calls throttled < <(stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["calls"], s["throttled"])')
  ok=$(python3 - "$work/report.json" "$parts" "$expected" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); parts, expected = int(sys.argv[2]), int(sys.argv[3])
seen = {(x["account"], x["region"]) for x in r["rows"]}
lost = parts - len(seen)
print(f"parts {len(seen)}/{parts} (lost {lost}), rows {len(r['rows'])}/{expected}, errors {len(r['errors'])}")
PY
)
  report "$1 (rss $((rss / 1024)) MiB)" "$wall" "$calls" "$throttled" "$ok"
}

# With BASELINE set, its runs alternate with pincher's, so both see the same machine.
for run in $(seq "${RUNS:-3}"); do
  run_pincher "pincher #$run" "$pincher"
  [ -z "${BASELINE:-}" ] || run_pincher "baseline #$run" "$BASELINE"
done

# c7n-org: the same question (every EC2 instance of every account and region) as a policy, in
# a venv of its own (its boto3 pins need not agree with moto's).
c7n=$target_dir/peers/c7n-venv
[ -x "$c7n/bin/python" ] || python3 -m venv "$c7n"
if [ "${C7N:-1}" = 0 ]; then
  echo "c7n-org skipped (C7N=0)"
elif [ -x "$c7n/bin/c7n-org" ] || "$c7n/bin/pip" install -q c7n-org >"$work/pip.log" 2>&1; then
  python3 - "$work/accounts" "$list" >"$work/c7n-accounts.yml" <<'PY'
import sys
ids, regions = open(sys.argv[1]).read().split(), sys.argv[2].split(",")
print("accounts:")
for i in ids:
    print(f"  - account_id: '{i}'\n    name: a{i}\n    role: arn:aws:iam::{i}:role/OrganizationAccountAccessRole")
    print("    regions: [" + ", ".join(regions) + "]")
PY
  printf 'policies:\n  - name: ec2-all\n    resource: aws.ec2\n' >"$work/c7n-policy.yml"
  for run in 1 2; do
    curl -s -X POST "$proxy/__reset" >/dev/null
    rm -rf "$work/c7n-out"
    AWS_ENDPOINT_URL=$proxy C7N_ORG_PARALLEL=$concurrency /usr/bin/time -f "%e %M" -o "$work/time" \
      "$c7n/bin/c7n-org" run -c "$work/c7n-accounts.yml" -s "$work/c7n-out" -u "$work/c7n-policy.yml" \
      --cache-period 0 >"$work/c7n.log" 2>&1 || true
    read -r wall rss < <(tail -n 1 "$work/time")
    read -r calls throttled < <(stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["calls"], s["throttled"])')
    ok=$(python3 - "$work/c7n-out" "$parts" "$expected" <<'PY'
import glob, json, os, sys
out, parts, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = glob.glob(os.path.join(out, "*", "*", "ec2-all", "resources.json"))
rows = sum(len(json.load(open(f))) for f in files)
print(f"parts {len(files)}/{parts} (lost {parts - len(files)}), rows {rows}/{expected}")
PY
)
    report "c7n-org #$run (rss $((rss / 1024)) MiB)" "$wall" "$calls" "$throttled" "$ok"
    grep -m 3 -iE "error|exception" "$work/c7n.log" | sed 's/^/  c7n-org: /' || true
    [ "$calls" != 0 ] || { tail -n 5 "$work/c7n.log" | sed 's/^/  c7n-org: /'; }
  done
else
  echo "c7n-org did not install here: $(tail -n 1 "$work/pip.log")"
fi
