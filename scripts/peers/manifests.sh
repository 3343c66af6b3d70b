# kubernetes-validate (PyPI): the Kubernetes manifests under infrastructure/, checked offline
# and strictly against the API schemas of the Kubernetes version they target.
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  pip_install "kubernetes-validate>=1.31,<2"
fi
say "checking the Kubernetes manifests"
"$venv/bin/python" scripts/check_manifests.py 1.32.0 || die "a Kubernetes manifest is invalid (above)"
