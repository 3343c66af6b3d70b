# Headless Chromium (Debian package chromium): the dashboard and HTML report tests drive it
# over the DevTools protocol.
if [ -z "${PINCHER_TEST_CHROMIUM:-}" ]; then
  if ! command -v chromium >/dev/null; then
    apt_install chromium
  fi
  PINCHER_TEST_CHROMIUM=$(command -v chromium) || die "Chromium is needed for the browser tests (Debian package chromium)"
fi
"$PINCHER_TEST_CHROMIUM" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 \
  || die "$PINCHER_TEST_CHROMIUM does not run headless"
export PINCHER_TEST_CHROMIUM
