"""Monthly range partitions of the ledger and events_enriched: created ahead, each with its RLS.

`ingest_event` and `events_enriched` are partitioned by RANGE (received_at), one partition per
UTC month (docs/lifecycle.md has the measurement behind the choice), plus a DEFAULT partition so
an insert never fails for a missing month. Every partition gets forced row-level security with
the same fail-closed policy as its parent (a partition reached directly is not covered by the
parent's policy) and the application role's DML grants, from the code that creates it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from codex.db import roles
from tenants import rls
from tenants.scope import system_scope

logger = logging.getLogger(__name__)

# Both tables are partitioned on the event's receipt time, so a month of one matches a month of
# the other: retention drops them together.
PARTITIONED_TABLES = ("ingest_event", "events_enriched")
# The beat job keeps this many months ready after the current one.
MONTHS_AHEAD = 3


def month_floor(day: date | datetime) -> date:
    """The first day of `day`'s month (UTC for datetimes)."""
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date()
    return date(day.year, day.month, 1)


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after `month` (negative: before)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    """`ingest_event_p202612` for December 2026."""
    return f"{table}_p{month:%Y%m}"


def default_name(table: str) -> str:
    """The catch-all partition that takes rows no month partition covers."""
    return f"{table}_default"


def _bounds(month: date) -> tuple[str, str]:
    return (f"{month.isoformat()} 00:00:00+00", f"{add_months(month, 1).isoformat()} 00:00:00+00")


def protect_sql(name: str) -> list[str]:
    """Forced RLS with the tenant policy on one partition, and the app role's DML on it."""
    role = settings.CODEX_DB_APP_ROLE
    ident = '"' + role.replace('"', '""') + '"'
    literal = "'" + role.replace("'", "''") + "'"
    return [
        *rls.policy_sql(name),
        # The role may not exist yet (a managed database, before its README step): migrate
        # grants every table once it does.
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {literal}) THEN "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {ident}; END IF; END $$",
    ]


@contextmanager
def _as_owner(cursor):
    """Run DDL as the connection's login user (the owner), then go back to the previous role.

    The service logs in as the owner and SET ROLEs to the restricted role (codex.db.roles); DDL
    needs the owner. SET LOCAL keeps the switch inside the caller's transaction.
    """
    cursor.execute("SELECT current_user, session_user")
    current, session = cursor.fetchone()
    if current != session:
        cursor.execute("SET LOCAL ROLE NONE")
    try:
        yield
    finally:
        if current != session:
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(current)))


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def _columns(cursor, table: str) -> str:
    cursor.execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [table],
    )
    return cursor.fetchone()[0]


def _create_month(cursor, table: str, month: date) -> None:
    """Create one month's partition; rows the default partition took for it move in first."""
    name = partition_name(table, month)
    start, end = _bounds(month)
    default = default_name(table)
    stray = 0
    if _exists(cursor, default):
        cursor.execute(
            f"SELECT count(*) FROM {default} WHERE received_at >= %s AND received_at < %s",
            [start, end],
        )
        stray = cursor.fetchone()[0]
    if not stray:
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    else:
        # The default partition holds rows of this month (the beat job did not run in time):
        # a new partition for the month cannot be attached while they are there, so they move
        # into a fresh table that is then attached, in this one transaction (nothing is lost).
        columns = _columns(cursor, table)
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE received_at >= %s AND received_at < %s "
            f"RETURNING {columns}) INSERT INTO {name} ({columns}) SELECT {columns} FROM moved",
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
        logger.warning(
            "rows moved out of the default partition",
            extra={"partition": name, "rows": stray},
        )
    for statement in protect_sql(name):
        cursor.execute(statement)


@dataclass
class EnsureOutcome:
    """Partitions created by one partitions_ensure call."""

    created: list[str] = field(default_factory=list)


def partitions_ensure(
    *, today: date | None = None, months_ahead: int = MONTHS_AHEAD, since: date | None = None
) -> EnsureOutcome:
    """Make sure every month from `since` (default: this month) to `months_ahead` later exists.

    Idempotent; also (re)creates the default partitions. Runs its DDL as the owner in one
    transaction per table, so a concurrent run waits instead of failing half-way.
    """
    first = month_floor(since or today or datetime.now(UTC))
    last = add_months(month_floor(today or datetime.now(UTC)), months_ahead)
    outcome = EnsureOutcome()
    for table in PARTITIONED_TABLES:
        with (
            roles.owner_for_ddl(),  # behind PgBouncer: on the DATABASE_OWNER_URL login
            # The owner is no superuser where the database is managed: forced RLS hides the
            # default partition's rows from it unless the transaction names its scope.
            system_scope("partitions"),
            connection.cursor() as cursor,
            _as_owner(cursor),
        ):
            # One creator at a time per table (beat, a migration, a manual run).
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
            default = default_name(table)
            if not _exists(cursor, default):
                cursor.execute(f"CREATE TABLE {default} PARTITION OF {table} DEFAULT")
                for statement in protect_sql(default):
                    cursor.execute(statement)
                outcome.created.append(default)
            month = first
            while month <= last:
                if not _exists(cursor, partition_name(table, month)):
                    _create_month(cursor, table, month)
                    outcome.created.append(partition_name(table, month))
                month = add_months(month, 1)
    if outcome.created:
        logger.info("partitions created", extra={"partitions": outcome.created})
    return outcome


def month_partitions(*, table: str) -> list[tuple[str, date]]:
    """The month partitions of `table` that exist, oldest first: (name, first day)."""
    prefix = f"{table}_p"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        suffix = name.removeprefix(prefix)
        if name.startswith(prefix) and len(suffix) == 6 and suffix.isdigit():
            months.append((name, date(int(suffix[:4]), int(suffix[4:]), 1)))
    return months


def partition_drop(*, table: str, month: date) -> bool:
    """Drop one month's partition of `table` (retention); False if it did not exist."""
    name = partition_name(table, month)
    with (
        roles.owner_for_ddl(),  # behind PgBouncer: on the DATABASE_OWNER_URL login
        transaction.atomic(),
        connection.cursor() as cursor,
        _as_owner(cursor),
    ):
        if not _exists(cursor, name):
            return False
        cursor.execute(f"DROP TABLE {name}")
    logger.info("partition dropped", extra={"partition": name})
    return True
