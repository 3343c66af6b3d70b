# promtool (Debian package prometheus): checks /metrics output and the alert rules.
if ! command -v promtool >/dev/null; then
  apt_install prometheus
fi
PINCHER_TEST_PROMTOOL=$(command -v promtool) || die "promtool is needed (Debian package prometheus)"
export PINCHER_TEST_PROMTOOL
