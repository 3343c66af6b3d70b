# shellcheck shell=bash
# Chef server peer: goiardi (Debian package) with authentication on (-A), in memory, on a free
# loopback port. Its --conf-root is a temp folder where goiardi writes admin.pem at start.
# Sourced by scripts/test, which provides apt_install, free_port, wait_for_http, $run_dir and
# the cleanups array. Exports PINCHER_TEST_CHEF_URL, _CLIENT and _KEY for the chef tests.

command -v goiardi >/dev/null || apt_install goiardi

goiardi_root=$run_dir/goiardi
mkdir -p "$goiardi_root"
goiardi_port=$(free_port)
goiardi --use-auth --conf-root="$goiardi_root" --ipaddress=127.0.0.1 --port="$goiardi_port" \
  --hostname=127.0.0.1 --log-level=error --log-file="$goiardi_root/goiardi.log" \
  >"$goiardi_root/stdout.log" 2>&1 &
goiardi_pid=$!
cleanups+=("kill $goiardi_pid")
wait_for_http "http://127.0.0.1:$goiardi_port/" 30 goiardi
for _ in $(seq 1 50); do [ -s "$goiardi_root/admin.pem" ] && break; sleep 0.1; done
[ -s "$goiardi_root/admin.pem" ] || die "goiardi did not write $goiardi_root/admin.pem (log: $goiardi_root)"

export PINCHER_TEST_CHEF_URL=http://127.0.0.1:$goiardi_port
export PINCHER_TEST_CHEF_CLIENT=admin
export PINCHER_TEST_CHEF_KEY=$goiardi_root/admin.pem
say "goiardi on $PINCHER_TEST_CHEF_URL (pid $goiardi_pid)"
