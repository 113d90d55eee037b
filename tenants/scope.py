"""Tenant and system scopes: which rows row-level security lets a transaction see.

Both are transaction-local (`set_config(..., true)` inside `atomic`), never session settings, so a
pooled connection can never leak one request's tenant into the next.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from codex import context

logger = logging.getLogger(__name__)
# Hot-path scopes (one per request) are logged at DEBUG to keep the logs readable.
QUIET_REASONS = frozenset({"auth", "admin"})


def _set(name: str, value: str) -> str:
    """Set a transaction-local GUC and return its previous value."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(current_setting(%s, true), ''), set_config(%s, %s, true)",
            [name, name, value],
        )
        return cursor.fetchone()[0]


def _restore(name: str, previous: str) -> None:
    # A released savepoint keeps SET LOCAL values until the outer commit: put the old one back.
    # (On an exception the savepoint rollback already reverts it, so this runs on success only.)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, previous])


@contextmanager
def tenant_scope(tenant_id: uuid.UUID | str) -> Iterator[None]:
    """Run a block in one transaction that sees only `tenant_id`'s rows."""
    tid = str(uuid.UUID(str(tenant_id)))
    with transaction.atomic():
        previous_tenant = _set("app.tenant_id", tid)
        previous_system = _set("app.system_scope", "")
        token = context.tenant_id.set(tid)
        try:
            yield
        finally:
            context.tenant_id.reset(token)
        _restore("app.system_scope", previous_system)
        _restore("app.tenant_id", previous_tenant)


@contextmanager
def system_scope(reason: str) -> Iterator[None]:
    """Run a block in one transaction that sees every tenant; named, and logged with its reason."""
    if not reason:
        raise ValueError("system_scope needs a reason")
    with transaction.atomic():
        previous = _set("app.system_scope", reason)
        level = logging.DEBUG if reason in QUIET_REASONS else logging.INFO
        logger.log(level, "system scope opened", extra={"scope_reason": reason})
        yield
        _restore("app.system_scope", previous)
