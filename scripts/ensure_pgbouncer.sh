#!/usr/bin/env bash
# PgBouncer for the pooled pass of `make test` (scripts/pgbouncer_run.py runs the RLS, race, flood,
# drain and pooling tests once more through a transaction-pooling PgBouncer).
exec bash "$(dirname "$0")/ensure_deb.sh" pgbouncer pgbouncer --version \
    "the pooled pass of make test (scripts/pgbouncer_run.py)"
