# Shared by the bench scripts (sourced): a work folder that is removed on exit together with
# the servers started into `pids`, free loopback ports, and waiting for a server to answer.
work=$(mktemp -d -t pincher-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_http URL [SECONDS]: until URL gives any HTTP answer (10 s by default), else exits.
wait_http() {
  for _ in $(seq 1 $((${2:-10} * 10))); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench: $1 did not answer" >&2
  exit 1
}
