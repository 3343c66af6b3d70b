# moto server: a local fake of the AWS APIs for the AWS report tests. Sourced by scripts/test,
# which provides say, die, pip_install, free_port, wait_for_http, $venv, $run_dir and cleanups.
# Exports PINCHER_TEST_MOTO_URL (http://127.0.0.1:PORT), where the tests find it.

if [ ! -x "$venv/bin/moto_server" ]; then
  pip_install 'moto[server]'
fi
[ -x "$venv/bin/moto_server" ] || die "moto_server is missing from $venv after installing moto[server]"

moto_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$run_dir/moto.log" 2>&1 &
moto_pid=$!
cleanups+=("kill $moto_pid")
wait_for_http "http://127.0.0.1:$moto_port/moto-api/" 60 "moto server"
export PINCHER_TEST_MOTO_URL=http://127.0.0.1:$moto_port
say "moto server at $PINCHER_TEST_MOTO_URL"
