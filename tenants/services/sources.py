"""Webhook sources: create, disable/enable (one or many), rotate the secret, store the API key.

A source's secret is the one its platform signs with (Shopify's app secret, Stripe's endpoint
`whsec_...`, a Standard Webhooks `whsec_...`): operators paste it in, it is stored Fernet-encrypted
(tenants.crypto, CODEX_SECRETS_KEY) and never shown again. A rotation keeps the previous secret
verifying for an overlap, so deliveries signed before the platform switched still pass. Reads
(resolving a source for a delivery, a tenant's sources) are in tenants.selectors.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenants import crypto, keycache
from tenants.audit import audit_record
from tenants.errors import SourceError
from tenants.models import Tenant, WebhookSource
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import source_get, source_path
from tenants.services.offboarding import tenant_require_not_offboarded

logger = logging.getLogger(__name__)

MAX_SECRET_LEN = 512
# Secret strength per kind (docs/sources.md "Secrets"): what each platform really issues.
STANDARD_SECRET_BYTES = (24, 64)  # the HMAC key after whsec_, base64-decoded (Svix: 24 or 32)
STRIPE_SECRET_CHARS = (16, 128)  # after whsec_ (Dashboard: 32, Stripe CLI: 64)
SHOPIFY_SECRET_MIN_CHARS = 32  # client secrets are shpss_ + 32 hex, store secrets 64 hex
# A rotation's overlap: long enough for any platform's switch-over, short enough that a leaked
# old secret dies (and far from datetime's range: 3000000d once ended in an OverflowError).
MAX_OVERLAP = timedelta(days=30)
_TYPE_FIELD_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
# A dotted path of object keys, e.g. customer.id: at most 8 steps, 64 characters.
_SUBJECT_FIELD_RE = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7}", re.ASCII)


@dataclass(frozen=True)
class SourceInfo:
    """A source as operators see it (no secret)."""

    source_id: str
    tenant_slug: str
    kind: str
    enabled: bool
    path: str
    url: str

    def as_json(self) -> dict:
        """The `source_add --json` document."""
        return {"source_id": self.source_id, "path": self.path, "url": self.url, "kind": self.kind}


def _info(source: WebhookSource, slug: str) -> SourceInfo:
    path = source_path(source.source_id)
    return SourceInfo(
        source_id=source.source_id,
        tenant_slug=slug,
        kind=source.kind,
        enabled=source.enabled,
        path=path,
        url=settings.CODEX_PUBLIC_URL.rstrip("/") + path,
    )


def _check_secret(secret: str) -> str:
    secret = secret.strip()
    if not secret or len(secret) > MAX_SECRET_LEN or not secret.isprintable():
        raise SourceError(f"the secret must be 1 to {MAX_SECRET_LEN} printable characters")
    return secret


def _standard_key_check(secret: str) -> None:
    low, high = STANDARD_SECRET_BYTES
    shape = f"a Standard Webhooks secret is whsec_ + base64 of {low} to {high} bytes"
    text = secret.removeprefix("whsec_")
    try:
        # Padding is optional (the standardwebhooks library pads itself); anything else is not.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SourceError(f"{shape}; this one is not valid base64") from exc
    if not low <= len(key) <= high:
        raise SourceError(f"{shape}; this one is {len(key)} bytes")


def source_secret_check(*, kind: str, secret: str) -> str:
    """The cleaned secret when it is well-formed and strong enough for its kind; else SourceError.

    The message says what a good secret of the kind looks like, never the value given.
    """
    secret = _check_secret(secret)
    plain = secret.isascii() and not any(c.isspace() for c in secret)
    if kind == WebhookSource.Kind.STANDARD:
        _standard_key_check(secret)
    elif kind == WebhookSource.Kind.STRIPE:
        low, high = STRIPE_SECRET_CHARS
        if not plain or not secret.startswith("whsec_") or not low <= len(secret) - 6 <= high:
            raise SourceError(
                f"a Stripe signing secret is whsec_ + {low} to {high} characters without spaces "
                "(Dashboard: the endpoint's Signing secret -> Reveal)"
            )
    elif not plain or len(secret) < SHOPIFY_SECRET_MIN_CHARS:
        raise SourceError(
            f"a Shopify secret is at least {SHOPIFY_SECRET_MIN_CHARS} ASCII characters without "
            "spaces (the app's client secret, or the store's webhook signing secret)"
        )
    return secret


def source_overlap_check(overlap: timedelta) -> timedelta:
    """The overlap when it is 0s to MAX_OVERLAP; SourceError naming the allowed maximum."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise SourceError(
            f"overlap must be between 0s and {MAX_OVERLAP.days}d (the allowed maximum, "
            f"{int(MAX_OVERLAP.total_seconds() // 3600)}h)"
        )
    return overlap


def _changed() -> None:
    keycache.clear()
    keycache.clear_on_commit()


def source_check(
    *,
    kind: str,
    secret: str,
    type_field: str = "type",
    api_key: str = "",
    subject_field: str = "",
) -> str:
    """Validate a new source's settings; the cleaned secret, or SourceError saying what is wrong."""
    if kind not in WebhookSource.Kind.values:
        raise SourceError(f"kind must be one of {', '.join(WebhookSource.Kind.values)}")
    secret = source_secret_check(kind=kind, secret=secret)
    if not _TYPE_FIELD_RE.fullmatch(type_field):
        raise SourceError("type field: 1-64 letters, digits, '_', '.' or '-'")
    if subject_field:
        if kind != WebhookSource.Kind.STANDARD:
            raise SourceError("only a standard source has a subject field (the others map theirs)")
        if len(subject_field) > 64 or not _SUBJECT_FIELD_RE.fullmatch(subject_field):
            raise SourceError(
                "subject field: a dotted path of keys (e.g. customer.id), at most 8 steps and 64 "
                "characters of letters, digits, '_' or '-'"
            )
    if api_key and kind != WebhookSource.Kind.STRIPE:
        raise SourceError("only a stripe source has an API key")
    return secret


def source_create(
    *,
    tenant: Tenant,
    kind: str,
    secret: str,
    actor: str,
    user=None,
    type_field: str = "type",
    api_key: str = "",
    subject_field: str = "",
) -> SourceInfo:
    """Create an enabled source for the tenant; audited (never with the secret)."""
    tenant_require_not_offboarded(tenant_id=tenant.id)
    secret = source_check(
        kind=kind,
        secret=secret,
        type_field=type_field,
        api_key=api_key,
        subject_field=subject_field,
    )
    with transaction.atomic():
        with tenant_scope(tenant.id):
            source = WebhookSource.objects.create(
                tenant=tenant,
                source_id=f"src_{tenant.id.hex}_{secrets.token_hex(12)}",
                kind=kind,
                secret_encrypted=crypto.encrypt(secret),
                type_field=type_field,
                subject_field=subject_field,
                api_key_encrypted=crypto.encrypt(_check_secret(api_key)) if api_key else "",
            )
        audit_record(
            actor=actor,
            user=user,
            action="source.create",
            tenant_id=tenant.id,
            target=source.source_id,
            new={
                "kind": kind,
                "type_field": type_field,
                "subject_field": subject_field,
                "api_key": bool(api_key),
            },
        )
    logger.info(
        "webhook source created",
        extra={"tenant_slug": tenant.slug, "source_id": source.source_id, "kind": kind},
    )
    return _info(source, tenant.slug)


def source_set_enabled(*, source_id: str, enabled: bool, actor: str, user=None) -> bool:
    """Disable (deliveries get 410) or enable a source; False when it already was. Audited."""
    source = source_get(source_id=source_id)
    if enabled:
        tenant_require_not_offboarded(tenant_id=source.tenant_id)
    with transaction.atomic(), tenant_scope(source.tenant_id):
        changed = (
            WebhookSource.objects.filter(tenant_id=source.tenant_id, source_id=source_id)
            .exclude(enabled=enabled)
            .update(enabled=enabled)
        )
        if changed:
            _changed()
            audit_record(
                actor=actor,
                user=user,
                action="source.enable" if enabled else "source.disable",
                tenant_id=source.tenant_id,
                target=source_id,
                old={"enabled": not enabled},
                new={"enabled": enabled},
            )
    return bool(changed)


@transaction.atomic
def sources_set_enabled_many(
    *, sources: Iterable[WebhookSource], enabled: bool, actor: str, user=None
) -> list[str]:
    """Disable or enable each source, all or nothing; the ids of those that changed.

    TenantOffboarded (nothing enabled) when enabling a source of an offboarded tenant.
    """
    return [
        s.source_id
        for s in sources
        if source_set_enabled(source_id=s.source_id, enabled=enabled, actor=actor, user=user)
    ]


@dataclass(frozen=True)
class SourceRotation:
    """What source_credentials_rotate did."""

    previous_valid_until: datetime | None  # None: the secret was not rotated
    api_key_stored: bool


@transaction.atomic
def source_credentials_rotate(
    *,
    source_id: str,
    secret: str = "",
    overlap: timedelta,
    api_key: str = "",
    actor: str,
    user=None,
) -> SourceRotation:
    """Rotate the secret and/or store a new Stripe API key, all or nothing; audited each.

    SourceError when neither is given.
    """
    if not secret and not api_key:
        raise SourceError("give a new secret, an API key, or both")
    until = None
    if secret:
        until = source_rotate_secret(
            source_id=source_id, secret=secret, overlap=overlap, actor=actor, user=user
        )
    if api_key:
        source_set_api_key(source_id=source_id, api_key=api_key, actor=actor, user=user)
    return SourceRotation(previous_valid_until=until, api_key_stored=bool(api_key))


def source_rotate_secret(
    *, source_id: str, secret: str, overlap: timedelta, actor: str, user=None
) -> datetime:
    """Make `secret` current; the current one keeps verifying until now + overlap. Audited.

    Returns the end of the overlap. A previous secret still inside an earlier overlap is dropped:
    two secrets at most verify at any time.
    """
    source_overlap_check(overlap)
    source = source_get(source_id=source_id)
    tenant_require_not_offboarded(tenant_id=source.tenant_id)
    secret = source_secret_check(kind=source.kind, secret=secret)
    until = timezone.now() + overlap
    with transaction.atomic(), tenant_scope(source.tenant_id):
        row = WebhookSource.objects.select_for_update().get(
            tenant_id=source.tenant_id, source_id=source_id
        )
        WebhookSource.objects.filter(tenant_id=source.tenant_id, id=row.id).update(
            previous_secret_encrypted=row.secret_encrypted,
            previous_valid_until=until,
            secret_encrypted=crypto.encrypt(secret),
        )
        _changed()
        audit_record(
            actor=actor,
            user=user,
            action="source.rotate_secret",
            tenant_id=source.tenant_id,
            target=source_id,
            old={"previous_valid_until": None},
            new={
                "previous_valid_until": until.isoformat(),
                "overlap_seconds": int(overlap.total_seconds()),
            },
        )
    return until


def source_set_api_key(*, source_id: str, api_key: str, actor: str, user=None) -> None:
    """Store (encrypted) the Stripe API key reconcile lists the account's events with. Audited."""
    source = source_get(source_id=source_id)
    tenant_require_not_offboarded(tenant_id=source.tenant_id)
    if source.kind != WebhookSource.Kind.STRIPE:
        raise SourceError("only a stripe source has an API key")
    token = crypto.encrypt(_check_secret(api_key))
    with transaction.atomic(), tenant_scope(source.tenant_id):
        WebhookSource.objects.filter(tenant_id=source.tenant_id, source_id=source_id).update(
            api_key_encrypted=token
        )
        audit_record(
            actor=actor,
            user=user,
            action="source.set_api_key",
            tenant_id=source.tenant_id,
            target=source_id,
            old={"api_key": bool(source.api_key_encrypted)},
            new={"api_key": True},
        )


def source_touch(*, tenant_id: uuid.UUID, source_id: str, accepted: int, duplicate: int) -> None:
    """Count a delivery and record its time (one UPDATE in the tenant's scope)."""
    with tenant_scope(tenant_id):
        WebhookSource.objects.filter(tenant_id=tenant_id, source_id=source_id).update(
            last_received_at=timezone.now(),
            accepted_count=F("accepted_count") + accepted,
            duplicate_count=F("duplicate_count") + duplicate,
        )


def source_secrets_reencrypt() -> tuple[int, int]:
    """Re-encrypt every source secret and API key with the first CODEX_SECRETS_KEY key.

    Returns (secrets seen, secrets re-encrypted); part of secrets_key_rotate.
    """
    total = changed = 0
    columns = ("secret_encrypted", "previous_secret_encrypted", "api_key_encrypted")
    with transaction.atomic(), system_scope("secrets-key-rotate"):
        for row in WebhookSource.objects.select_for_update().order_by("id"):
            updates = {}
            for column in columns:
                token = getattr(row, column)
                if not token:
                    continue
                total += 1
                try:
                    new = crypto.reencrypt(token)
                except crypto.SecretUndecryptable:
                    logger.error(
                        "source secret undecryptable during rotation",
                        extra={"source_id": row.source_id, "column": column},
                    )
                    raise
                if new is not None:
                    updates[column] = new
            if updates:
                WebhookSource.objects.filter(tenant_id=row.tenant_id, id=row.id).update(**updates)
                changed += len(updates)
    return total, changed
