#!/usr/bin/env bash
# Times `pincher aws ec2 report --output json` on a moto server holding about 2,000 instances
# over 4 regions, against `aws ec2 describe-instances` (awscli from PyPI) over the same
# regions, and pincher with the fan-out bound at 1 versus the default.
#
#   bench/aws_ec2_report.sh [PINCHER_BINARY]    (default: target/release/pincher, else debug)
#   BENCH_REGIONS="us-east-1" BENCH_RESERVATIONS=200 BENCH_PER_RESERVATION=100 \
#     BENCH_TAG_EVERY=20 bench/aws_ec2_report.sh  (20,000 instances in one region, 1 in 20
#                                                 reservations tagged: moto looks tags up by
#                                                 scanning them all, per instance it describes)
#   BENCH_REGIONS="us-east-1" BENCH_RESERVATIONS=10 BENCH_PER_RESERVATION=100 BENCH_COPIES=20 \
#     bench/aws_ec2_report.sh                     (20,000 instances as pincher sees them: 1,000
#                                                 on moto, each DescribeInstances page answered
#                                                 20 times over by bench/ec2_pages.py, ids made
#                                                 unique; moto cannot page 20,000 itself)
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
[ -x "$venv/bin/aws" ] || "$venv/bin/pip" install -q awscli

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -s -o /dev/null "$url/moto-api/" && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PINCHER_AWS__ENDPOINT_URL=$url PINCHER_DATABASE__URL=sqlite://$work/pincher.db
read -r -a regions <<<"${BENCH_REGIONS:-us-east-1 us-west-2 eu-west-1 ap-southeast-2}"
reservations=${BENCH_RESERVATIONS:-50} per_reservation=${BENCH_PER_RESERVATION:-10}
tag_every=${BENCH_TAG_EVERY:-1}

# 2,000 instances: 50 reservations of 10 per region, like autoscaling groups launching. Each
# reservation gets its own /24 subnet of one VPC per region: moto looks for a free address by
# walking its subnet from the start, so one crowded subnet makes seeding quadratic (20,000
# instances in the default subnet would take hours and do not fit its /20 anyway).
"$venv/bin/python" - "$url" "$reservations" "$per_reservation" "$tag_every" "${regions[@]}" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
url, reservations, per, tag_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
regions = sys.argv[5:]
if reservations > 256 or per > 250:
    sys.exit("bench: at most 256 reservations of 250 instances per region (one /24 each)")
def launch(region):
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for i in range(reservations):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "service", "Value": f"svc-{i % 7}"}]}]
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=per, MaxCount=per, InstanceType="t3.micro",
            SubnetId=subnet, TagSpecifications=tags if i % tag_every == 0 else [])
with ThreadPoolExecutor(4) as pool:
    list(pool.map(launch, regions))
PY

copies=${BENCH_COPIES:-1}
if [ "$copies" -gt 1 ]; then
  proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 bench/ec2_pages.py "$proxy_port" "$url" "$copies" >"$work/proxy.log" 2>&1 &
  proxy=$!
  trap 'kill $moto $proxy 2>/dev/null; rm -rf "$work"' EXIT
  url=http://127.0.0.1:$proxy_port
  export PINCHER_AWS__ENDPOINT_URL=$url
  for _ in $(seq 100); do curl -s -o /dev/null "$url/__stats" && break; sleep 0.1; done
fi

measure() {
  local what=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
  read -r wall user sys rss <"$work/time"
  printf '%-44s wall %6.2fs  cpu %6.2fs  rss %6.1f MiB\n' "$what" "$wall" \
    "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss / 1024" | bc)"
}

list=$(IFS=,; echo "${regions[*]}")
"$pincher" aws --regions "$list" ec2 report --output json >"$work/warm.json"
count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["total"])' "$work/warm.json")
echo "instances: $count over ${#regions[@]} regions; pincher: $pincher"
for run in 1 2 3; do
  measure "pincher (aws.concurrency=8, default) #$run" "$pincher" aws --regions "$list" ec2 report --output json
  PINCHER_AWS__CONCURRENCY=1 measure "pincher (aws.concurrency=1) #$run" "$pincher" aws --regions "$list" ec2 report --output json
  measure "moto alone (curl, 4 regions, 1 page each) #$run" bash -c '
    for r in "$@"; do curl -s -o /dev/null "'"$url"'/" -H "content-type: application/x-www-form-urlencoded" \
      -H "authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/$r/ec2/aws4_request, SignedHeaders=host, Signature=0" \
      --data "Action=DescribeInstances&Version=2016-11-15&MaxResults=1000"; done' _ "${regions[@]}"
  measure "awscli describe-instances x4 regions #$run" bash -c '
    for r in "$@"; do "'"$venv"'/bin/aws" --endpoint-url "'"$url"'" --region "$r" ec2 describe-instances --output json; done' _ "${regions[@]}"
done
