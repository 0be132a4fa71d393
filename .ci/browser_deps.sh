#!/usr/bin/env bash
# What tests/test_browser.py needs: Debian's Chromium and the playwright Python package (into the
# active Python environment). Never `playwright install`: it downloads a browser of its own; the
# test drives /usr/bin/chromium. Without root (or sudo), outside CI, it only says what is missing:
# the browser test then skips. Under CI=true a missing browser is an error.
set -uo pipefail

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ] && $SUDO apt-get update -qq && \
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
        echo "installed $(/usr/bin/chromium --version)"
    elif [ "${CI:-}" = "true" ]; then
        echo "error: could not install Debian's chromium (needed by tests/test_browser.py under CI)" >&2
        exit 1
    else
        echo "note: Debian's chromium is not installed (apt-get install chromium, as root);" \
             "the real-browser test will be skipped"
    fi
fi
python -m pip install -q "playwright>=1.40" || { [ "${CI:-}" = "true" ] && exit 1; }
exit 0
