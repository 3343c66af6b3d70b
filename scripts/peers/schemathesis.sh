# schemathesis (PyPI): contract fuzzing of the running service against /openapi.json.
if [ ! -x "$venv/bin/schemathesis" ]; then
  pip_install "schemathesis>=4,<5"
fi
export PINCHER_TEST_SCHEMATHESIS=$venv/bin/schemathesis
