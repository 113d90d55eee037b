"""The tenants app's part of offboarding: its start and end, the final-state guard, the wipes.

Offboarding (ingest.services.offboard) is final. Only this module marks it: the start's audit
row, and at the end the tenant's status `offboarded` with the final audit row (no other app
writes the tenant row). Every other app's rows go through the deletion registry
(tenants.deletions). Every path that would give a tenant something
back (resume, provisioning, a new signing key, a new or re-enabled source, a source secret or API
key) calls `tenant_require_not_offboarded` first; it refuses a tenant that is offboarded or whose
offboarding has begun (its `tenant.offboard.start` audit row exists), with TenantOffboarded.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from tenants import keycache
from tenants.audit import audit_record
from tenants.errors import TenantOffboarded
from tenants.models import AuditLog, SigningKey, Tenant, WebhookSource
from tenants.scope import system_scope, tenant_scope

# The audit actions that mark the start and the end of an offboarding.
OFFBOARD_STARTED = "tenant.offboard.start"
OFFBOARD_FINISHED = "tenant.offboard"


def tenant_offboard_finished(*, tenant_id: uuid.UUID | str) -> bool:
    """Whether the tenant's offboarding has finished (its final audit row exists)."""
    with system_scope("lifecycle"):
        return AuditLog.objects.filter(tenant_id=tenant_id, action=OFFBOARD_FINISHED).exists()


def tenant_offboard_start(*, tenant: Tenant, actor: str, user=None) -> None:
    """Record that offboarding began: from here on the tenant is refused anything given back."""
    audit_record(
        actor=actor,
        user=user,
        action=OFFBOARD_STARTED,
        tenant_id=str(tenant.id),
        target=tenant.slug,
    )


def tenant_offboard_finish(*, tenant: Tenant, actor: str, user=None, details: dict) -> None:
    """The tombstone: status offboarded and the final audit row (`details` added), together.

    One transaction, so the final row (what a rerun checks) exists exactly when the status does.
    """
    with transaction.atomic():
        with system_scope("lifecycle"):
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDED)
        audit_record(
            actor=actor,
            user=user,
            action=OFFBOARD_FINISHED,
            tenant_id=str(tenant.id),
            target=tenant.slug,
            old={"status": tenant.status},
            new={"status": Tenant.Status.OFFBOARDED, **details},
        )


def tenant_require_not_offboarded(*, tenant_id: uuid.UUID | str) -> None:
    """Raise TenantOffboarded (code tenant_offboarded) when the tenant is or is being offboarded."""
    with system_scope("tenant-status"):
        row = Tenant.objects.filter(pk=tenant_id).values_list("slug", "status").first()
        started = AuditLog.objects.filter(tenant_id=tenant_id, action=OFFBOARD_STARTED).exists()
    if row is None:
        return
    slug, status = row
    if status == Tenant.Status.OFFBOARDED:
        state = "is offboarded"
    elif started:
        state = "is being offboarded (tenant_offboard has begun; run it again to finish)"
    else:
        return
    raise TenantOffboarded(
        f"tenant {slug!r} {state}: offboarding is final, so it cannot be resumed, "
        "re-provisioned or given keys or sources"
    )


def tenant_secrets_wipe(*, tenant_id: uuid.UUID | str) -> int:
    """Erase the secrets of a tenant's revoked keys and of its disabled sources; rows changed.

    Signing secrets of revoked keys, source secrets (current and previous) and Stripe API keys
    become empty: nothing of the tenant can verify a request or call its accounts again.
    """
    with transaction.atomic(), tenant_scope(tenant_id):
        keys = (
            SigningKey.objects.filter(tenant_id=tenant_id, status=SigningKey.Status.REVOKED)
            .exclude(secret_encrypted="")
            .update(secret_encrypted="")
        )
        sources = (
            WebhookSource.objects.filter(tenant_id=tenant_id, enabled=False)
            .exclude(secret_encrypted="", previous_secret_encrypted="", api_key_encrypted="")
            .update(
                secret_encrypted="",
                previous_secret_encrypted="",
                previous_valid_until=None,
                api_key_encrypted="",
            )
        )
        keycache.clear()
        keycache.clear_on_commit()
    return keys + sources
