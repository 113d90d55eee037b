#!/usr/bin/env bash
# Make sure a Debian package's program is installed for a test pass or a drill:
#
#     ensure_deb.sh [--strict] PACKAGE PROGRAM 'VERSION ARGS' 'what does not run without it'
#
# Installs PACKAGE with apt-get when PROGRAM is missing and we are root (or have passwordless
# sudo); otherwise says loudly what is missing and what then does not run. Exits 0 either way
# (the tests that need PROGRAM skip loudly), or 1 with --strict. Never starts a system service.
set -euo pipefail

strict=0
if [[ "${1:-}" == "--strict" ]]; then
    strict=1
    shift
fi
if (($# != 4)); then
    echo "usage: ensure_deb.sh [--strict] PACKAGE PROGRAM 'VERSION ARGS' 'WHAT'" >&2
    exit 2
fi
package="$1" program="$2" version_args="$3" what="$4"
me="ensure_${package}"

find_program() { command -v "$program" 2>/dev/null || for d in /usr/sbin /usr/bin; do
    [[ -x "$d/$program" ]] && echo "$d/$program" && return 0
done; }

report() {
    local bin
    bin="$(find_program)" || return 1
    [[ -n "$bin" ]] || return 1
    # shellcheck disable=SC2086 # the version arguments are words on purpose
    echo "$me: $program $1 ($("$bin" $version_args 2>&1 | head -n 1))"
}

report present && exit 0

install_with() {
    # $@: the prefix to run apt-get with ("command" as root, "sudo -n" otherwise).
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "$@" "${apt[@]}" update -qq
    "$@" "${apt[@]}" install -y -qq --no-install-recommends "$package"
}

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "$me: installing $package with apt-get"
    install_with command || echo "$me: apt-get could not install $package" >&2
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "$me: installing $package with sudo apt-get"
    install_with sudo -n || echo "$me: sudo apt-get could not install $package" >&2
fi

report installed && exit 0

{
    echo "########################################################################################"
    echo "# $me: $program is MISSING and could not be installed here (needs root or"
    echo "# passwordless sudo with a working apt-get). NOT RUN without it: $what."
    echo "# Install it with:    sudo apt-get install -y $package"
    echo "########################################################################################"
} >&2
exit "$strict"
