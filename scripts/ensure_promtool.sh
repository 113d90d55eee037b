#!/usr/bin/env bash
# Make sure promtool, the prometheus server and Alertmanager are installed for the observability
# tests (tests/infra/: `promtool check/test rules`, a real Prometheus scrape, and an alert routed
# by a real Alertmanager to a webhook receiver).
# Installs Debian's `prometheus` package (ships promtool) and `prometheus-alertmanager` (ships
# amtool) with apt-get when missing and we are root; otherwise says loudly what is missing (the
# promtool-based tests then skip with that reason). Never starts a Prometheus service.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

all_present() { have promtool && have prometheus && have amtool && have prometheus-alertmanager; }

if all_present; then
    echo "ensure_promtool: promtool, prometheus, amtool and prometheus-alertmanager present ($(promtool --version 2>&1 | head -n 1))"
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
        all_present && exit 0
    fi
    echo "ensure_promtool: apt-get could not install ${packages[*]}" >&2
elif have apt-get && have sudo && sudo -n true 2>/dev/null; then
    echo "ensure_promtool: installing ${packages[*]} with sudo apt-get"
    if install_with sudo -n; then
        all_present && exit 0
    fi
    echo "ensure_promtool: sudo apt-get could not install ${packages[*]}" >&2
fi

all_present && exit 0

cat >&2 <<'MSG'
########################################################################################
# ensure_promtool: promtool, prometheus, amtool or prometheus-alertmanager is MISSING   #
# and could not be installed here (needs root or passwordless sudo with apt-get). The    #
# alert tests in tests/infra/ (promtool, real Prometheus and Alertmanager) will SKIP.    #
# Install them with:                                                                     #
#     sudo apt-get install -y prometheus prometheus-alertmanager                         #
########################################################################################
MSG
exit 0
