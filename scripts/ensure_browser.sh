#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver are installed for the real-browser admin test.
# Installs Debian's `chromium` + `chromium-driver` with apt-get when missing and we are root;
# otherwise says loudly what is missing (the browser test then skips with that reason).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

browser=""
for b in chromium chromium-browser google-chrome; do have "$b" && { browser="$b"; break; }; done
driver=""
have chromedriver && driver=chromedriver

if [[ -n "$browser" && -n "$driver" ]]; then
    echo "ensure_browser: $browser and $driver present"
    exit 0
fi

if [[ "$(id -u)" == "0" ]] && have apt-get; then
    echo "ensure_browser: installing chromium and chromium-driver with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver
    then
        exit 0
    fi
    echo "ensure_browser: apt-get could not install chromium; the browser test will SKIP" >&2
    exit 0
fi

if have sudo && sudo -n true 2>/dev/null; then
    echo "ensure_browser: installing chromium and chromium-driver with sudo apt-get"
    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver
    exit 0
fi

cat >&2 <<'MSG'
########################################################################################
# ensure_browser: Chromium and/or chromedriver are MISSING and this user cannot install  #
# them (needs root or passwordless sudo with apt-get). The real-browser admin test      #
# (tests/flags/test_admin_browser.py) will SKIP. Install them with:                     #
#     sudo apt-get install -y chromium chromium-driver                                  #
########################################################################################
MSG
exit 0
