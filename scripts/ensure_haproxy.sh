#!/usr/bin/env bash
# Make sure HAProxy is installed where a real reverse proxy goes in front of gunicorn:
# scripts/upgrade_drill.py (infra/haproxy/haproxy.cfg on loopback: health checks on /healthz,
# maintenance over the runtime API, 503 + Retry-After while no backend is up), and `make test`
# (tests behind a proxy; there `|| true`, the test skips loudly without it). Installs Debian's
# `haproxy` package with apt-get when missing and we are root (or have passwordless sudo);
# otherwise says loudly what is missing and exits 1. Never starts the system HAProxy service
# (callers run their own haproxy on a loopback port).
set -euo pipefail

have() { command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]; }
bin() { command -v haproxy || echo /usr/sbin/haproxy; }

if have; then
    echo "ensure_haproxy: haproxy present ($("$(bin)" -v 2>&1 | head -n 1))"
    exit 0
fi

install_with() {
    # $@: the prefix to run apt-get with ("command" as root, "sudo -n" otherwise).
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "$@" "${apt[@]}" update -qq
    "$@" "${apt[@]}" install -y -qq --no-install-recommends haproxy
}

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "ensure_haproxy: installing haproxy with apt-get"
    install_with command || echo "ensure_haproxy: apt-get could not install haproxy" >&2
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "ensure_haproxy: installing haproxy with sudo apt-get"
    install_with sudo -n || echo "ensure_haproxy: sudo apt-get could not install haproxy" >&2
fi

if have; then
    echo "ensure_haproxy: haproxy installed ($("$(bin)" -v 2>&1 | head -n 1))"
    exit 0
fi

cat >&2 <<'MSG'
########################################################################################
# ensure_haproxy: haproxy is MISSING and could not be installed here (needs root or      #
# passwordless sudo with a working apt-get). Install it with:                            #
#     sudo apt-get install -y haproxy                                                    #
########################################################################################
MSG
exit 1
