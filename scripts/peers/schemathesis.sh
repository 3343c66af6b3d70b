# schemathesis (PyPI): contract fuzzing of the running service against /openapi.json.
# Pinned: a new release brings new checks and generators, and the suite should change only
# when this line does.
schemathesis_version=4.32.5
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$schemathesis_version" ]; then
  pip_install "schemathesis==$schemathesis_version"
fi
export PINCHER_TEST_SCHEMATHESIS=$venv/bin/schemathesis
