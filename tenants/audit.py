"""Audit rows for operator actions: who, when, what, which tenant, old -> new."""

from __future__ import annotations

import uuid
from typing import Any

from tenants.models import AuditLog
from tenants.scope import system_scope


def audit_record(
    *,
    actor: str,
    action: str,
    tenant_id: uuid.UUID | str | None,
    target: str = "",
    old: Any = None,
    new: Any = None,
    user=None,
) -> AuditLog:
    """Write one audit row (in a system scope, so platform-wide rows with no tenant work too)."""
    with system_scope("audit"):
        return AuditLog.objects.create(
            actor=actor,
            actor_user=user if getattr(user, "pk", None) else None,
            action=action,
            tenant_id=tenant_id,
            target=target,
            old=old,
            new=new,
        )


def actor_of(user) -> str:
    """The audit actor for an operator in the admin: the username ('admin' if anonymous).

    The one actor helper of the admin; commands use codex.commands.cli_actor ('cli:<os user>').
    """
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return "admin"
