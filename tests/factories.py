"""factory_boy factories for every model, in one place: rows written in the right RLS scope.

Tenant-owned rows are created inside their tenant's scope (tenants.scope), tenants and the
platform-wide tables (audit log, global flags, flag history) in a named system scope, exactly as
the services write them; signing keys and webhook sources go through their services, so their
secrets are encrypted and the clear ones are returned once (NewKey, SourceInfo).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from flags.models import FlagChange, GlobalFlag, TenantFlag
from ingest.models import DeadLetter, EnrichedEvent, Event, IdempotencyKey, IngestWarning
from reconcile.models import ReconcileRun, SourceReconcileRun
from tenants.models import AuditLog, Device, Tenant
from tenants.scope import system_scope, tenant_scope
from tests.helpers import SOURCE_SECRETS


class UserFactory(factory.django.DjangoModelFactory):
    """An admin user (staff, password "pw"); superuser=True for an operator with every right."""

    class Meta:
        model = get_user_model()

    # Unique across runs too: the admin login throttle counts per username in Redis for minutes.
    username = factory.LazyFunction(lambda: f"user-{uuid.uuid4().hex[:10]}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    is_superuser = False

    @classmethod
    def _create(cls, model_class, *args, password="pw", **kwargs):
        manager = cls._get_manager(model_class)
        if kwargs.pop("is_superuser", False):
            kwargs.pop("is_staff", None)
            return manager.create_superuser(*args, password=password, **kwargs)
        return manager.create_user(*args, password=password, **kwargs)


class TenantFactory(factory.django.DjangoModelFactory):
    """A tenant with a unique slug (t1, t2, ...) and a title-cased name."""

    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"t{n + 1}")
    name = factory.LazyAttribute(lambda o: o.slug.title())

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with system_scope("test-factory"):
            return super()._create(model_class, *args, **kwargs)


class _SystemScopedFactory(factory.django.DjangoModelFactory):
    """Rows of a platform-wide table (tenant may be null), written in a named system scope."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with system_scope("test-factory"):
            return super()._create(model_class, *args, **kwargs)


class _TenantOwnedFactory(factory.django.DjangoModelFactory):
    """Rows of a tenant-owned table, written inside that tenant's scope."""

    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with tenant_scope(kwargs["tenant"].id):
            return super()._create(model_class, *args, **kwargs)


class DeviceFactory(_TenantOwnedFactory):
    """A device of a tenant (no key: SigningKeyFactory(device=...) issues one)."""

    class Meta:
        model = Device

    name = factory.Sequence(lambda n: f"device-{n + 1}")


class SigningKeyFactory(factory.Factory):
    """An active signing key, created by tenants.services.keys.signing_key_create.

    Returns the service's NewKey (key_id and the clear secret, shown once), not the model row.
    """

    class Meta:
        model = dict  # replaced by _create: the service builds the row

    tenant = factory.SubFactory(TenantFactory)
    device = None

    @classmethod
    def _create(cls, model_class, *args, tenant, device=None, **kwargs):
        from tenants.services.keys import signing_key_create

        return signing_key_create(tenant=tenant, device=device)


class WebhookSourceFactory(factory.Factory):
    """An enabled webhook source, created by tenants.services.sources.source_create.

    Returns the service's SourceInfo (source_id, path, ...), not the model row; the secret is the
    kind's test secret (SOURCE_SECRETS) unless given.
    """

    class Meta:
        model = dict  # replaced by _create: the service builds the row

    tenant = factory.SubFactory(TenantFactory)
    kind = "standard"
    secret = factory.LazyAttribute(lambda o: SOURCE_SECRETS[o.kind])
    actor = "test"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from tenants.services.sources import source_create

        return source_create(**kwargs)


class AuditLogFactory(_SystemScopedFactory):
    """An audit row (tenant=None for a platform-wide action)."""

    class Meta:
        model = AuditLog

    tenant = factory.SubFactory(TenantFactory)
    actor = "test"
    action = "test.action"
    target = ""


class GlobalFlagFactory(_SystemScopedFactory):
    """A global flag value written directly (no history, no cache invalidation).

    Migrations seed a row per flag, so this updates the flag's row (or creates it).
    """

    class Meta:
        model = GlobalFlag

    key = "retryCap"
    value = 3

    @classmethod
    def _create(cls, model_class, *args, key, **fields):
        with system_scope("test-factory"):
            row, _ = model_class.objects.update_or_create(key=key, defaults=fields)
            return row


class TenantFlagFactory(_TenantOwnedFactory):
    """A tenant's flag override written directly (no history, no cache invalidation)."""

    class Meta:
        model = TenantFlag

    key = "retryCap"
    value = 3


class FlagChangeFactory(_SystemScopedFactory):
    """A flag history row (tenant=None for a global change)."""

    class Meta:
        model = FlagChange

    tenant = factory.SubFactory(TenantFactory)
    key = "retryCap"
    old = None
    new = 3
    actor = "test"
    via = FlagChange.Via.CLI


class EventFactory(_TenantOwnedFactory):
    """A ledger row written directly (no wake-up, as if Redis had lost it), not yet enriched."""

    class Meta:
        model = Event

    idempotency_key = factory.Sequence(lambda n: f"ev-{n + 1}")
    type = "sale.completed"
    source = "pos"
    occurred_at = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    received_at = factory.LazyFunction(timezone.now)
    payload = factory.LazyFunction(lambda: {"amount": "12.34", "currency": "EUR"})
    fingerprint = factory.LazyAttribute(
        lambda o: hashlib.sha256(o.idempotency_key.encode()).hexdigest()
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """The row and its idempotency key, as the one-statement write stores them together."""
        event = super()._create(model_class, *args, **kwargs)
        with tenant_scope(event.tenant_id):
            IdempotencyKey.objects.create(
                tenant_id=event.tenant_id,
                idempotency_key=event.idempotency_key,
                fingerprint=event.fingerprint,
                event_id=event.id,
                received_at=event.received_at,
            )
        return event

    @classmethod
    def from_doc(cls, tenant: Tenant, doc: dict, **overrides) -> Event:
        """A ledger row for an /v1/events document (tests.helpers.make_event)."""
        return cls(
            tenant=tenant,
            idempotency_key=doc["idempotency_key"],
            type=doc["type"],
            source=doc.get("source", "sdk"),
            occurred_at=doc["occurred_at"],
            payload=doc.get("payload", {}),
            **overrides,
        )


class IdempotencyKeyFactory(_TenantOwnedFactory):
    """An idempotency row alone (EventFactory already writes one with each event)."""

    class Meta:
        model = IdempotencyKey

    idempotency_key = factory.Sequence(lambda n: f"idem-{n + 1}")
    fingerprint = factory.LazyAttribute(
        lambda o: hashlib.sha256(o.idempotency_key.encode()).hexdigest()
    )
    event_id = factory.Sequence(lambda n: 1_000_000 + n)
    received_at = factory.LazyFunction(timezone.now)


class EnrichedEventFactory(_TenantOwnedFactory):
    """The events_enriched row of an Event (pass event=...), amounts as the enrichment writes."""

    class Meta:
        model = EnrichedEvent

    event = factory.SubFactory(EventFactory)
    tenant = factory.SelfAttribute("event.tenant")
    type = factory.SelfAttribute("event.type")
    source = factory.SelfAttribute("event.source")
    occurred_at = factory.SelfAttribute("event.occurred_at")
    occurred_date = factory.LazyAttribute(lambda o: o.occurred_at.date())
    received_at = factory.SelfAttribute("event.received_at")
    amount_minor = 100
    currency = "EUR"
    lag_ms = 0


class DeadLetterFactory(_TenantOwnedFactory):
    """An open dead letter of an Event (pass event=...)."""

    class Meta:
        model = DeadLetter

    event = factory.SubFactory(EventFactory)
    tenant = factory.SelfAttribute("event.tenant")
    error_class = "RuntimeError"
    error_message = "boom"


class IngestWarningFactory(_TenantOwnedFactory):
    """A stored ingestion warning (a refused item), as ingest_warnings_record writes one."""

    class Meta:
        model = IngestWarning

    code = "invalid_event"
    message = "type: required"
    key_id = "ck_test"
    idempotency_key = factory.Sequence(lambda n: f"warn-{n + 1}")
    item = "{}"


class ReconcileRunFactory(_TenantOwnedFactory):
    """A tenant's reconcile run for one UTC day (no drift unless told)."""

    class Meta:
        model = ReconcileRun

    day = datetime(2026, 1, 15, tzinfo=UTC).date()
    window_start = factory.LazyAttribute(
        lambda o: datetime(o.day.year, o.day.month, o.day.day, tzinfo=UTC)
    )
    window_end = factory.LazyAttribute(lambda o: o.window_start + timedelta(days=1))
    accepted = 10
    enriched = factory.SelfAttribute("accepted")
    dead_lettered = 0
    drift = factory.LazyAttribute(
        lambda o: (o.accepted - o.enriched) / o.accepted if o.accepted else 0.0
    )
    run_at = factory.LazyFunction(timezone.now)


class SourceReconcileRunFactory(_TenantOwnedFactory):
    """A webhook source's reconcile run (pass source_id=... of a WebhookSourceFactory)."""

    class Meta:
        model = SourceReconcileRun

    source_id = factory.Sequence(lambda n: f"src_test_{n + 1}")
    kind = "stripe"
    day = datetime(2026, 1, 15, tzinfo=UTC).date()
    window_start = factory.LazyAttribute(
        lambda o: datetime(o.day.year, o.day.month, o.day.day, tzinfo=UTC)
    )
    window_end = factory.LazyAttribute(lambda o: o.window_start + timedelta(days=1))
    at_source = 0
    missing_at_ingest = 0
