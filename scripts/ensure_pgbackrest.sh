#!/usr/bin/env bash
# Make sure pgBackRest is installed for the backup and point-in-time-restore drill
# (scripts/restore_drill.py, `make drill-restore`, infra/runbooks/restore.md). Installs Debian's
# `pgbackrest` package with apt-get when missing and we are root (or have passwordless sudo);
# otherwise says loudly what is missing (the drill then cannot run, and says so again). Never
# touches a running PostgreSQL or any pgBackRest configuration of the system.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/bin/$1" ]]; }

if have pgbackrest; then
    bin="$(command -v pgbackrest || echo /usr/bin/pgbackrest)"
    echo "ensure_pgbackrest: pgbackrest present ($("$bin" version 2>&1 | head -n 1))"
    exit 0
fi

install_with() {
    # $@: the prefix to run apt-get with ("command" as root, "sudo -n" otherwise).
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "$@" "${apt[@]}" update -qq
    "$@" "${apt[@]}" install -y -qq --no-install-recommends pgbackrest
}

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "ensure_pgbackrest: installing pgbackrest with apt-get"
    install_with command || echo "ensure_pgbackrest: apt-get could not install pgbackrest" >&2
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "ensure_pgbackrest: installing pgbackrest with sudo apt-get"
    install_with sudo -n || echo "ensure_pgbackrest: sudo apt-get could not install pgbackrest" >&2
fi

have pgbackrest && exit 0

cat >&2 <<'MSG'
########################################################################################
# ensure_pgbackrest: pgbackrest is MISSING and could not be installed here (needs root #
# or passwordless sudo with a working apt-get). The restore drill                      #
# (scripts/restore_drill.py, `make drill-restore`) will NOT run.                       #
# Install it with:                                                                     #
#     sudo apt-get install -y pgbackrest                                               #
########################################################################################
MSG
exit 0
