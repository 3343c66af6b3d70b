#!/usr/bin/env bash
# Times `pincher aws savings report --output json` on a moto server seeded with waste and
# healthy look-alikes over 4 regions, against the plainest script a user would write for the
# same question: boto3, region after region, DescribeVolumes, DescribeAddresses,
# DescribeSnapshots (owner self), DescribeImages (owner self) and DescribeInstances, with the
# four storage rules (unattached volume, idle address, orphaned snapshot, stopped instance)
# and no prices. pincher also looks for its other kinds, which costs it Lambda and RDS calls
# the script does not make.
#
#   bench/aws_savings_report.sh [PINCHER_BINARY]    (default: target/release/pincher, else debug)
#
# Prints one line per run: what, wall seconds, user+system CPU seconds, peak RSS in MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
pincher=${1:-}
if [ -z "$pincher" ]; then
  for candidate in "$target_dir/release/pincher" "$target_dir/debug/pincher"; do
    [ -x "$candidate" ] && { pincher=$candidate; break; }
  done
fi
[ -x "${pincher:-}" ] || { echo "build pincher first (cargo build --release)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 1; }

venv=$target_dir/peers/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
[ -x "$venv/bin/moto_server" ] || "$venv/bin/pip" install -q 'moto[server]'

source bench/lib.sh
port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
url=http://127.0.0.1:$port
wait_http "$url/moto-api/"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PINCHER_AWS__ENDPOINT_URL=$url PINCHER_DATABASE__URL=sqlite://$work/pincher.db
export PINCHER_SAVINGS__BILLED_TOTAL=false
regions=(us-east-1 us-west-2 eu-west-1 ap-southeast-2)

# Per region: 100 unattached and 100 attached volumes, 50 idle and 50 associated addresses,
# 100 snapshots of deleted volumes and 100 of live ones, 50 running and 50 stopped instances.
"$venv/bin/python" - "$url" "${regions[@]}" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
url, regions = sys.argv[1], sys.argv[2:]
def seed(region):
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=url)
    zone = region + "a"
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=100,
        MaxCount=100, InstanceType="t3.micro")["Instances"]]
    ec2.stop_instances(InstanceIds=ids[50:])
    for i in range(100):
        ec2.create_volume(Size=10, AvailabilityZone=zone, VolumeType="gp2")
        live = ec2.create_volume(Size=20, AvailabilityZone=zone, VolumeType="gp3")["VolumeId"]
        ec2.attach_volume(VolumeId=live, InstanceId=ids[i], Device="/dev/sdf")
        ec2.create_snapshot(VolumeId=live)
        gone = ec2.create_volume(Size=5, AvailabilityZone=zone)["VolumeId"]
        ec2.create_snapshot(VolumeId=gone)
        ec2.delete_volume(VolumeId=gone)
    for i in range(50):
        ec2.allocate_address(Domain="vpc")
        used = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.associate_address(AllocationId=used, InstanceId=ids[i])
with ThreadPoolExecutor(4) as pool:
    list(pool.map(seed, regions))
PY

cat >"$work/plain.py" <<'PY'
# The plain script: one region after the other, every page, four rules, JSON out.
import json, sys, boto3
url, regions = sys.argv[1], sys.argv[2:]
findings = []
account = boto3.client("sts", region_name=regions[0], endpoint_url=url).get_caller_identity()["Account"]
for region in regions:
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=url)
    page = lambda op, key, **kw: [x for p in ec2.get_paginator(op).paginate(**kw) for x in p[key]]
    volumes = page("describe_volumes", "Volumes")
    live = {v["VolumeId"] for v in volumes}
    findings += [("unattached-volume", region, v["VolumeId"]) for v in volumes if v["State"] == "available"]
    for a in ec2.describe_addresses()["Addresses"]:
        if not a.get("InstanceId") and not a.get("NetworkInterfaceId"):
            findings.append(("idle-address", region, a["AllocationId"]))
    images = page("describe_images", "Images", Owners=["self"])
    behind = {m["Ebs"]["SnapshotId"] for i in images for m in i.get("BlockDeviceMappings", []) if "Ebs" in m}
    for s in page("describe_snapshots", "Snapshots", OwnerIds=["self"]):
        # moto lists its public AMIs' snapshots under owner self too; AWS does not.
        if s["OwnerId"] == account and s["VolumeId"] not in live and s["SnapshotId"] not in behind:
            findings.append(("orphaned-snapshot", region, s["SnapshotId"]))
    for r in page("describe_instances", "Reservations"):
        for i in r["Instances"]:
            if i["State"]["Name"] == "stopped":
                findings.append(("stopped-instance", region, i["InstanceId"]))
json.dump(findings, sys.stdout)
PY

measure() {
  local what=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
  read -r wall user sys rss <"$work/time"
  printf '%-46s wall %6.2fs  cpu %6.2fs  rss %6.1f MiB\n' "$what" "$wall" \
    "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss / 1024" | bc)"
}

list=$(IFS=,; echo "${regions[*]}")
"$pincher" aws --regions "$list" savings report --stopped-days 0 --snapshot-age-days 0 \
  --output json >"$work/warm.json"
python3 - "$work/warm.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
by_kind = {k: v["findings"] for k, v in report["summary"]["by_kind"].items() if v["findings"]}
print(f"findings: {report['summary']['findings']} {by_kind}; errors: {len(report['errors'])}")
PY
"$venv/bin/python" "$work/plain.py" "$url" "${regions[@]}" >"$work/plain.json"
python3 -c 'import json,sys,collections; print("plain script findings:", dict(collections.Counter(k for k,_,_ in json.load(open(sys.argv[1])))))' "$work/plain.json"
echo "pincher: $pincher"
args=(aws --regions "$list" savings report --stopped-days 0 --snapshot-age-days 0 --output json)
for run in 1 2 3; do
  measure "pincher savings report (concurrency 8) #$run" "$pincher" "${args[@]}"
  PINCHER_AWS__CONCURRENCY=1 measure "pincher savings report (concurrency 1) #$run" "$pincher" "${args[@]}"
  measure "plain boto3 script, 4 rules #$run" "$venv/bin/python" "$work/plain.py" "$url" "${regions[@]}"
done
