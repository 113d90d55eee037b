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
QUIET_REASONS = frozenset({"admin"})


_SWAP_SQL = (
    "SELECT coalesce(current_setting('app.tenant_id', true), ''),"
    " coalesce(current_setting('app.system_scope', true), ''),"
    " set_config('app.tenant_id',"
    " coalesce(%s::text, current_setting('app.tenant_id', true), ''), true),"
    " set_config('app.system_scope', %s, true)"
)


def _swap(tenant: str | None, system: str) -> tuple[str, str]:
    """Set both scope GUCs (tenant None: keep it) in one round trip; return the previous pair."""
    with connection.cursor() as cursor:
        cursor.execute(_SWAP_SQL, [tenant, system])
        previous_tenant, previous_system, _, _ = cursor.fetchone()
    return previous_tenant, previous_system


_SET_SQL = (
    "SELECT set_config('app.tenant_id',"
    " coalesce(%s::text, current_setting('app.tenant_id', true), ''), true),"
    " set_config('app.system_scope', %s, true)"
)


@contextmanager
def _scoped(tenant: str | None, system: str) -> Iterator[None]:
    """One atomic block with the scope GUCs set, put back on exit when nested."""
    # Outermost block: the commit ends the transaction and its SET LOCALs, nothing to restore
    # (and nothing to read first).
    nested = connection.in_atomic_block
    with transaction.atomic():
        if nested:
            previous = _swap(tenant, system)
        else:
            with connection.cursor() as cursor:
                cursor.execute(_SET_SQL, [tenant, system])
        yield
        # A released savepoint keeps SET LOCAL values until the outer commit: put the old ones
        # back. (On an exception the savepoint rollback reverts them, so this runs on success.)
        if nested:
            _swap(*previous)


@contextmanager
def tenant_scope(tenant_id: uuid.UUID | str) -> Iterator[None]:
    """Run a block in one transaction that sees only `tenant_id`'s rows."""
    tid = str(uuid.UUID(str(tenant_id)))
    token = context.tenant_id.set(tid)
    try:
        with _scoped(tid, ""):
            yield
    finally:
        context.tenant_id.reset(token)


@contextmanager
def system_scope(reason: str) -> Iterator[None]:
    """Run a block in one transaction that sees every tenant; named, and logged with its reason."""
    if not reason:
        raise ValueError("system_scope needs a reason")
    level = logging.DEBUG if reason in QUIET_REASONS else logging.INFO
    logger.log(level, "system scope opened", extra={"scope_reason": reason})
    with _scoped(None, reason):  # the tenant GUC is left as it is
        yield
