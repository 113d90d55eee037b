"""Per-request (and per-task) logging context: the request id and the tenant id."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("rid", default=None)
tenant_id: ContextVar[str | None] = ContextVar("tenant_id", default=None)

# An incoming X-Request-ID is honoured only when it is a short, plain token.
_SANE_RID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    """Return the caller's request id when sane, else a generated one."""
    if candidate and _SANE_RID.match(candidate):
        return candidate
    return new_request_id()


def bind_tenant(value: object | None) -> None:
    """Record the tenant once it is known, so every later log line carries it."""
    tenant_id.set(str(value) if value is not None else None)
