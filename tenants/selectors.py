"""Reads of the tenants app: tenants by slug, devices, signing keys and webhook sources."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from codex import error_codes as codes
from tenants import crypto, keycache
from tenants.errors import SourceError, TenantNotFound
from tenants.models import Device, SigningKey, Tenant, WebhookSource
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """What authentication needs to verify a request signed with `key_id`."""

    key_id: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_active: bool
    device: str | None
    # Empty when the key exists but may no longer verify (revoked, device revoked, overlap over).
    # Kept out of repr: a ResolvedKey is request.auth and may reach logs or error reports.
    secrets: tuple[bytes, ...] = field(repr=False)
    revoked: bool
    # When the secrets stop verifying by themselves (a rotated key's overlap end, a key's
    # not_after): a cached ResolvedKey is refused from then on, without a new lookup.
    usable_until: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        """True while the key may verify requests."""
        return bool(self.secrets) and (self.usable_until is None or now < self.usable_until)


@dataclass(frozen=True)
class KeyReport:
    """One key in a provisioning report; `secret` is set only for a key created just now."""

    key_id: str
    secret: str | None = field(repr=False)
    device: str | None


# --- tenants ---------------------------------------------------------------------------------


def tenant_get(*, slug: str) -> Tenant:
    """The tenant with this slug (looked up in a named system scope); TenantNotFound if none.

    The one tenant-by-slug lookup: commands, the admin and services all come through here.
    """
    tenant = tenant_find(slug=slug)
    if tenant is None:
        raise TenantNotFound(f"no tenant {slug!r}")
    return tenant


def tenant_find(*, slug: str) -> Tenant | None:
    """The tenant with this slug, or None (a system-scope read: slugs are cross-tenant)."""
    with system_scope("tenant-lookup"):
        return Tenant.objects.filter(slug=slug).first()


# --- devices ---------------------------------------------------------------------------------


def device_get(*, tenant: Tenant, name: str) -> Device:
    """The tenant's device called `name`; `device_not_found` when there is none."""
    with tenant_scope(tenant.id):
        device = Device.objects.filter(tenant_id=tenant.id, name=name).first()
    if device is None:
        raise codes.DEVICE_NOT_FOUND.error(f"tenant {tenant.slug!r} has no device {name!r}")
    return device


# --- signing keys ----------------------------------------------------------------------------


def signing_keys_active(*, tenant_id: uuid.UUID) -> tuple[KeyReport, ...]:
    """The keys a device or store system should be using now (no secrets); caller scopes."""
    keys = (
        SigningKey.objects.filter(tenant_id=tenant_id, status=SigningKey.Status.ACTIVE)
        .filter(Q(device__isnull=True) | Q(device__revoked_at__isnull=True))
        .select_related("device")
        .order_by("created_at", "id")
    )
    return tuple(
        KeyReport(key_id=k.key_id, secret=None, device=k.device.name if k.device_id else None)
        for k in keys
    )


def _usable(key: SigningKey, now: datetime) -> bool:
    if key.status == SigningKey.Status.REVOKED:
        return False
    if key.device_id is not None and key.device.revoked_at is not None:
        return False
    if key.status == SigningKey.Status.ROTATED:
        return key.not_after is not None and key.not_after > now
    return key.not_after is None or key.not_after > now


def signing_key_resolve(key_id: str) -> ResolvedKey | None:
    """Look a key up for authentication; None when no such key exists.

    The key id names its tenant, so the lookup runs in that tenant's scope. The key's usable
    secrets are returned; a key that exists but may no longer verify comes back with
    `revoked=True` and no secrets.
    """
    tenant_id = crypto.tenant_of_key_id(key_id)
    if tenant_id is None:
        return None
    now = timezone.now()
    with tenant_scope(tenant_id):
        key = (
            SigningKey.objects.select_related("tenant", "device")
            .filter(tenant_id=tenant_id, key_id=key_id)
            .first()
        )
        return None if key is None else _resolved(key, now)


def _resolved(key: SigningKey, now: datetime) -> ResolvedKey:
    """The ResolvedKey of a key row (with its tenant and device): decrypted while usable."""
    usable = _usable(key, now)
    try:
        secret = crypto.secret_bytes(crypto.decrypt(key.secret_encrypted)) if usable else None
    except crypto.SecretUndecryptable:
        logger.error(
            "signing secret undecryptable: CODEX_SECRETS_KEY lacks the key that encrypted it "
            "(run rotate_secrets_key before removing a key)",
            extra={"key_id": key.key_id},
        )
        raise
    return ResolvedKey(
        key_id=key.key_id,
        tenant_id=key.tenant_id,
        tenant_slug=key.tenant.slug,
        tenant_active=key.tenant.status == Tenant.Status.ACTIVE,
        device=key.device.name if key.device_id else None,
        secrets=(secret,) if secret is not None else (),
        revoked=not usable,
        usable_until=key.not_after if usable else None,
    )


def signing_keys_recent(*, limit: int) -> list[ResolvedKey]:
    """The `limit` most recently used keys that may verify, resolved (a system-scope read).

    For warming a new process's key cache; undecryptable keys are left out (logged).
    """
    now = timezone.now()
    found: list[ResolvedKey] = []
    with system_scope("key-cache-warm"):
        rows = (
            SigningKey.objects.select_related("tenant", "device")
            .filter(tenant__status=Tenant.Status.ACTIVE)
            .exclude(status=SigningKey.Status.REVOKED)
            .order_by(F("last_used_at").desc(nulls_last=True), "-created_at")[:limit]
        )
        shared: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
        for key in rows.iterator(chunk_size=2000):
            # One tenant id and slug object per tenant, not per key (memory at 100,000 keys).
            key.tenant_id, key.tenant.slug = shared.setdefault(
                key.tenant_id, (key.tenant_id, key.tenant.slug)
            )
            try:
                resolved = _resolved(key, now)
            except crypto.SecretUndecryptable:
                continue
            if not resolved.revoked:
                found.append(resolved)
    return found


def signing_key_resolve_cached(key_id: str) -> ResolvedKey | None:
    """signing_key_resolve, answered from this process's key cache while the entry is valid.

    A database outage raises (OperationalError) and caches nothing.
    """
    return keycache.resolve(
        key_id, crypto.tenant_of_key_id(key_id), lambda: signing_key_resolve(key_id)
    )


# src_<tenant hex>_<24 hex>: names its tenant (the lookup opens that tenant's scope, as key ids
# do) and carries 96 random bits, so a source's URL cannot be guessed.
_SOURCE_ID_RE = re.compile(r"src_([0-9a-f]{32})_[0-9a-f]{24}", re.ASCII)
SOURCE_CACHE_PREFIX = "source:"


@dataclass(frozen=True)
class ResolvedSource:
    """What the delivery path needs: tenant, kind, state and the secrets that verify now."""

    source_id: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_active: bool
    kind: str
    enabled: bool
    type_field: str
    secrets: tuple[str, ...] = field(repr=False)  # current first, then the previous one
    previous_valid_until: datetime | None = None
    subject_field: str = ""  # standard: dotted path of the body's subject id ("" = none)

    def secrets_at(self, now: datetime) -> tuple[str, ...]:
        """The secrets that verify at `now`: the previous one only inside its overlap."""
        if len(self.secrets) > 1 and (
            self.previous_valid_until is None or now >= self.previous_valid_until
        ):
            return self.secrets[:1]
        return self.secrets


def source_path(source_id: str) -> str:
    """The delivery path of a source."""
    return f"/v1/sources/{source_id}/webhooks"


def tenant_of_source_id(source_id: str) -> uuid.UUID | None:
    """The tenant a source id names, or None when it is not of our form."""
    match = _SOURCE_ID_RE.fullmatch(source_id)
    return uuid.UUID(hex=match.group(1)) if match else None


def source_find(source_id: str) -> WebhookSource | None:
    """The source with this id (with its tenant), read in the tenant's scope its id names."""
    tenant_id = tenant_of_source_id(source_id)
    if tenant_id is None:
        return None
    with tenant_scope(tenant_id):
        return (
            WebhookSource.objects.select_related("tenant")
            .filter(tenant_id=tenant_id, source_id=source_id)
            .first()
        )


def source_get(*, source_id: str) -> WebhookSource:
    """The source with this id (with its tenant); SourceError when there is none."""
    source = source_find(source_id)
    if source is None:
        raise SourceError(f"no source {source_id!r}")
    return source


def source_api_key(*, source: WebhookSource) -> str | None:
    """The clear Stripe API key of a source, or None when none is stored."""
    return crypto.decrypt(source.api_key_encrypted) if source.api_key_encrypted else None


def source_resolve(source_id: str) -> ResolvedSource | None:
    """Look a source up for a delivery (its tenant's scope); None when no such source exists."""
    source = source_find(source_id)
    if source is None:
        return None
    try:
        # Empty once offboarding wiped it (the source is disabled for good: 410, nothing verifies).
        current = crypto.decrypt(source.secret_encrypted) if source.secret_encrypted else None
        previous = (
            crypto.decrypt(source.previous_secret_encrypted)
            if source.previous_secret_encrypted
            and source.previous_valid_until
            and source.previous_valid_until > timezone.now()
            else None
        )
    except crypto.SecretUndecryptable:
        logger.error(
            "source secret undecryptable: CODEX_SECRETS_KEY lacks the key that encrypted it",
            extra={"source_id": source_id},
        )
        raise
    return ResolvedSource(
        source_id=source.source_id,
        tenant_id=source.tenant_id,
        tenant_slug=source.tenant.slug,
        tenant_active=source.tenant.status == Tenant.Status.ACTIVE,
        kind=source.kind,
        enabled=source.enabled,
        type_field=source.type_field,
        secrets=tuple(s for s in (current, previous) if s),
        previous_valid_until=source.previous_valid_until if previous else None,
        subject_field=source.subject_field,
    )


def source_resolve_cached(source_id: str) -> ResolvedSource | None:
    """source_resolve through the in-process key cache (same lifetimes and invalidation as keys)."""
    return keycache.resolve(
        SOURCE_CACHE_PREFIX + source_id,
        tenant_of_source_id(source_id),
        lambda: source_resolve(source_id),
    )


def sources_of_tenant(*, tenant_id: uuid.UUID) -> list[WebhookSource]:
    """A tenant's sources, oldest first (selector for commands and the admin)."""
    with tenant_scope(tenant_id):
        return list(WebhookSource.objects.filter(tenant_id=tenant_id).order_by("created_at", "id"))


def tenants_list(*, reason: str = "tenant-lookup") -> list[tuple[uuid.UUID, str]]:
    """Every tenant's (id, slug), by slug, whatever its status (a system scope named `reason`)."""
    with system_scope(reason):
        return list(Tenant.objects.order_by("slug").values_list("id", "slug"))
