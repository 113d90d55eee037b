"""factory_boy factories for the models, in one place: rows written in the right RLS scope.

Tenant-owned rows are created inside their tenant's scope (tenants.scope), tenants themselves in a
named system scope, exactly as the services write them; signing keys go through the service, so
their secret is encrypted and the clear one is returned (as NewKey) once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import factory
from django.utils import timezone

from ingest.models import DeadLetter, EnrichedEvent, Event, IdempotencyKey
from tenants.models import Device, Tenant
from tenants.scope import system_scope, tenant_scope


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
