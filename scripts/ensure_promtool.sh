#!/usr/bin/env bash
# Make sure promtool and the prometheus server binary are installed for the observability tests
# (tests/infra/test_observability.py: `promtool check/test rules`, a real Prometheus scrape).
# Installs Debian's `prometheus` package (ships promtool) and `prometheus-alertmanager` (ships
# amtool) with apt-get when missing and we are root; otherwise says loudly what is missing (the
# promtool-based tests then skip with that reason). Never starts a Prometheus service.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have promtool && have prometheus && have amtool; then
    echo "ensure_promtool: promtool, prometheus and amtool present ($(promtool --version 2>&1 | head -n 1))"
    exit 0
fi

packages=(prometheus prometheus-alertmanager)

install_with() {
    # $@: the prefix to run apt-get with ("" as root, "sudo -n" otherwise).
    # Wait for the dpkg lock rather than fail when another apt-get is running.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
    "$@" "${apt[@]}" update -qq
    "$@" "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}"
}

if [[ "$(id -u)" == "0" ]] && have apt-get; then
    echo "ensure_promtool: installing ${packages[*]} with apt-get"
    if install_with command; then
        have promtool && exit 0
    fi
    echo "ensure_promtool: apt-get could not install ${packages[*]}" >&2
elif have apt-get && have sudo && sudo -n true 2>/dev/null; then
    echo "ensure_promtool: installing ${packages[*]} with sudo apt-get"
    if install_with sudo -n; then
        have promtool && exit 0
    fi
    echo "ensure_promtool: sudo apt-get could not install ${packages[*]}" >&2
fi

have promtool && exit 0

cat >&2 <<'MSG'
########################################################################################
# ensure_promtool: promtool is MISSING and could not be installed here (needs root or   #
# passwordless sudo with a working apt-get). The alert-rule tests in                     #
# tests/infra/test_observability.py (promtool check/test rules, real Prometheus) will    #
# SKIP. Install it with:                                                                 #
#     sudo apt-get install -y prometheus prometheus-alertmanager                         #
########################################################################################
MSG
exit 0
