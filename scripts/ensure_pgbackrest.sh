#!/usr/bin/env bash
# pgBackRest for the backup and point-in-time-restore drill (scripts/restore_drill.py,
# `make drill-restore`, infra/runbooks/restore.md). Never touches a running PostgreSQL.
exec bash "$(dirname "$0")/ensure_deb.sh" pgbackrest pgbackrest version \
    "the restore drill (scripts/restore_drill.py, make drill-restore)"
