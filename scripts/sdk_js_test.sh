#!/usr/bin/env bash
# The JS SDK's unit tests (sdk-js/, node's test runner): makes sure node + npm are there (Debian's,
# with apt-get when missing and we are root or have passwordless sudo), installs the locked dev
# dependencies (offline from npm's cache when it can), builds (prints the bundle's gzipped size,
# fails over the 15 KB budget) and runs `node --test`. Fails when any step fails.
set -euo pipefail
cd "$(dirname "$0")/../sdk-js"

have() { command -v "$1" >/dev/null 2>&1; }

if ! have node || ! have npm; then
    sudo_prefix=()
    if [[ "$(id -u)" != "0" ]]; then
        if have sudo && sudo -n true 2>/dev/null; then
            sudo_prefix=(sudo -n)
        else
            echo "sdk_js_test: node/npm MISSING and this user cannot install them:" >&2
            echo "    sudo apt-get install -y nodejs npm" >&2
            exit 1
        fi
    fi
    echo "sdk_js_test: installing nodejs and npm with apt-get"
    apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "${sudo_prefix[@]}" "${apt[@]}" update -qq
    "${sudo_prefix[@]}" "${apt[@]}" install -y -qq --no-install-recommends nodejs npm
fi

major="$(node -p 'process.versions.node.split(".")[0]')"
if ((major < 18)); then
    echo "sdk_js_test: node $(node --version) is too old (need 18+: WebCrypto, fetch, node --test)" >&2
    exit 1
fi

# The lock file pins esbuild; the node_modules stamp avoids re-installing on every run.
if [[ ! -x node_modules/.bin/esbuild || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error
fi
npm run --silent build
node --test test/
