"""The restricted application role: who the service is in PostgreSQL, and when it is the owner.

The service connects with the credentials in DATABASE_URL and immediately `SET ROLE`s to the
application role, which has no SUPERUSER, no BYPASSRLS, owns nothing and holds DML grants only.
Migrations (and test database set-up/flush) run in "owner mode" on the current thread instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections
from psycopg import sql

from codex.db.pooling import logs_in_as_app_role

logger = logging.getLogger(__name__)
_state = threading.local()

GRANTS_SQL = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
"""


def app_role() -> str:
    """Name of the restricted role the service runs as."""
    return settings.CODEX_DB_APP_ROLE


def owner_mode_active() -> bool:
    """True while this thread works as the database owner (migrations, test set-up)."""
    return getattr(_state, "depth", 0) > 0


def enter_owner_mode() -> None:
    """Switch this thread's future connections to the owner (close the current ones)."""
    _close_all()
    _state.depth = getattr(_state, "depth", 0) + 1


def leave_owner_mode() -> None:
    """Return this thread to the restricted role (close the owner connections)."""
    _close_all()
    _state.depth = max(0, getattr(_state, "depth", 0) - 1)


@contextmanager
def owner_mode() -> Iterator[None]:
    """Run a block as the database owner; connections are reopened on both edges."""
    enter_owner_mode()
    try:
        yield
    finally:
        leave_owner_mode()


@contextmanager
def owner_for_ddl() -> Iterator[None]:
    """Run DDL the service does itself (partitions) where the owner is reachable.

    Logged in as the owner (the default), the DDL can `SET LOCAL ROLE NONE` inside its own
    transaction and this does nothing. Logged in as the app role (behind PgBouncer) there is no
    owner to go back to: the block runs in owner mode, on a DATABASE_OWNER_URL connection.
    """
    if owner_mode_active() or not logs_in_as_app_role(connections["default"].settings_dict):
        yield
        return
    with owner_mode():
        yield


def _close_all() -> None:
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def ensure_app_role(using: str = "default") -> bool:
    """Create the restricted role if it is missing and we may; return whether it exists."""
    role = app_role()
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            return True
        cursor.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        row = cursor.fetchone()
        if not (row and row[0]):
            logger.warning(
                "app role missing and current user may not create it",
                extra={"role": role},
            )
            return False
        cursor.execute(
            sql.SQL(
                "CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"
            ).format(sql.Identifier(role))
        )
        # The connecting user must be a member to SET ROLE to it.
        cursor.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(role)))
    return True


def grant_app_role(using: str = "default") -> None:
    """Give the restricted role DML on every table and sequence (run after each migrate)."""
    stmt = sql.SQL(GRANTS_SQL).format(role=sql.Identifier(app_role()))
    with connections[using].cursor() as cursor:
        cursor.execute(stmt)
        # Make sure the connecting user can SET ROLE even when the role pre-existed.
        cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [app_role()])
        if not cursor.fetchone()[0]:
            cursor.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(app_role())))
    role_time_limits_set(using=using)


def role_time_limits_set(*, using: str = "default") -> None:
    """Write the time limits as the app role's defaults (they apply where it logs in itself).

    A login as the app role (behind PgBouncer) gets no session SETs from the service (a pooler
    would leave them on one server connection), so the limits must hold from login. Needs
    CREATEROLE (or superuser); without it, say so and leave them to the administrator.
    """
    role = sql.Identifier(app_role())
    limits = connections[using].settings_dict.get("TIME_LIMITS_MS") or {}
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        row = cursor.fetchone()
        if not (row and row[0]):
            logger.warning(
                "may not ALTER ROLE: set the app role's time limits as an administrator",
                extra={"role": app_role()},
            )
            return
        for name in ("statement_timeout", "lock_timeout"):
            value = int(limits.get(name) or 0)
            if value:
                cursor.execute(
                    sql.SQL("ALTER ROLE {} SET {} = {}").format(
                        role, sql.Identifier(name), sql.Literal(value)
                    )
                )
            else:
                cursor.execute(sql.SQL("ALTER ROLE {} RESET {}").format(role, sql.Identifier(name)))
