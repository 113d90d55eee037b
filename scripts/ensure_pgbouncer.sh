#!/usr/bin/env bash
# Make sure PgBouncer is installed for the pooled pass of `make test` (scripts/pgbouncer_run.py
# runs the RLS, race, flood, drain and pooling tests once more through a transaction-pooling
# PgBouncer). Installs Debian's `pgbouncer` package with apt-get when missing and we are root (or
# have passwordless sudo); otherwise says loudly what is missing (the pooled pass then does not
# run, and pgbouncer_run.py says so again). Never starts the system PgBouncer service.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

if have pgbouncer; then
    bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
    echo "ensure_pgbouncer: pgbouncer present ($("$bin" --version 2>&1 | head -n 1))"
    exit 0
fi

install_with() {
    # $@: the prefix to run apt-get with ("command" as root, "sudo -n" otherwise).
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "$@" "${apt[@]}" update -qq
    "$@" "${apt[@]}" install -y -qq --no-install-recommends pgbouncer
}

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "ensure_pgbouncer: installing pgbouncer with apt-get"
    install_with command || echo "ensure_pgbouncer: apt-get could not install pgbouncer" >&2
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "ensure_pgbouncer: installing pgbouncer with sudo apt-get"
    install_with sudo -n || echo "ensure_pgbouncer: sudo apt-get could not install pgbouncer" >&2
fi

have pgbouncer && exit 0

cat >&2 <<'MSG'
########################################################################################
# ensure_pgbouncer: pgbouncer is MISSING and could not be installed here (needs root or  #
# passwordless sudo with a working apt-get). The pooled pass of `make test` (RLS, race,  #
# flood and pooling tests through PgBouncer, scripts/pgbouncer_run.py) will NOT run.     #
# Install it with:                                                                       #
#     sudo apt-get install -y pgbouncer                                                  #
########################################################################################
MSG
exit 0
