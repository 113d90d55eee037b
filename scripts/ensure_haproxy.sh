#!/usr/bin/env bash
# HAProxy where a real reverse proxy goes in front of gunicorn: scripts/upgrade_drill.py
# (infra/haproxy/haproxy.cfg on loopback) and the admin-login tests behind a proxy. Exits 1 when
# it cannot be had (`make test` calls it with `|| true`: those tests then skip loudly).
exec bash "$(dirname "$0")/ensure_deb.sh" --strict haproxy haproxy -v \
    "the upgrade drill and the admin-login tests behind a proxy"
