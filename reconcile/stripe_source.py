"""Reconcile against Stripe itself: did Stripe send us every event of the day?

For each of a tenant's stripe sources that has an API key, the account's events created in the
window are listed through the stripe library (paginated, `created` range) and looked up in the
ledger by their idempotency key (`stripe:<event id>`, ingest.webhooks.shapes). What Stripe has and
the ledger does not is `missing_at_ingest`, recorded in reconcile_source_run beside the drift of
reconcile_run; with repair=True those events are ingested through the same idempotent write path
as a delivery (events_ingest), and the repair is audited.

Configuration: the source's API key (tenants.services.sources.source_set_api_key, stored encrypted);
CODEX_STRIPE_API_BASE (settings or environment) points the library elsewhere (tests: a stand-in).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import stripe
from django.db import connection
from django.utils import timezone

from codex import error_codes as codes
from ingest.services.accept import events_ingest
from ingest.webhooks.selectors import event_ids_by_key
from ingest.webhooks.shapes import DeliveryInvalid, stripe_event
from reconcile import metrics
from reconcile.errors import ReconcileError
from reconcile.services import SETTLE, day_window
from tenants.audit import audit_record
from tenants.models import Tenant, WebhookSource
from tenants.scope import tenant_scope
from tenants.selectors import source_api_key, sources_of_tenant
from tenants.services.billing import stripe_config

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_NETWORK_RETRIES = 2
TIMEOUT_S = 20  # per Stripe request; the library's default is 80
REPAIR_BATCH = 500
AUDIT_IDS = 100  # event ids listed in the audit row (the counts are always complete)


class SourceReconcileError(ReconcileError):
    """A source reconcile that cannot run (tenant not active, no enabled source); safe to show."""

    def __init__(self, message: str):
        super().__init__(message, code=codes.SOURCE_RECONCILE_ERROR.code)


@dataclass
class SourceDay:
    """One source's reconciled day."""

    source_id: str
    day: date
    window_start: datetime
    window_end: datetime
    at_source: int
    missing: list[str] = field(default_factory=list)  # Stripe event ids not in the ledger
    repaired: int = 0
    unrepairable: dict[str, str] = field(default_factory=dict)  # event id -> why


def stripe_client(api_key: str) -> stripe.StripeClient:
    """A StripeClient with our retries and timeout, at CODEX_STRIPE_API_BASE when set."""
    _, api_base = stripe_config()
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.new_default_http_client(timeout=TIMEOUT_S),
    )


def stripe_events_list(
    *, client: stripe.StripeClient, start: datetime, end: datetime, types: list[str] | None
) -> Iterator[dict]:
    """Every event the account created in [start, end), page after page."""
    params: dict = {
        "created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())},
        "limit": PAGE_SIZE,
    }
    if types:
        params["types"] = types
    page = client.v1.events.list(params=params)
    for event in page.auto_paging_iter():
        yield event.to_dict()


def source_reconcile_stripe(
    *,
    tenant_id: uuid.UUID,
    day: date,
    repair: bool,
    actor: str,
    user=None,
    types: list[str] | None = None,
) -> list[SourceDay]:
    """Compare each enabled stripe source of an active tenant with Stripe; repair if asked.

    A suspended or offboarded tenant and a disabled source are refused before Stripe is called.
    Stripe failing is `stripe_failed` (nothing of that source is recorded); a stored API key no
    key decrypts is SecretUndecryptable.
    """
    _tenant_active_check(tenant_id)
    keyed = [
        s
        for s in sources_of_tenant(tenant_id=tenant_id)
        if s.kind == WebhookSource.Kind.STRIPE and s.api_key_encrypted
    ]
    sources = [s for s in keyed if s.enabled]
    if keyed and not sources:
        raise SourceReconcileError(
            f"source {', '.join(s.source_id for s in keyed)} is disabled: source reconcile "
            "never calls Stripe for a disabled source (source_enable it first)"
        )
    if not sources:
        raise SourceReconcileError(
            "the tenant has no stripe source with an API key (source_add --api-key, or "
            "source_set_api_key)"
        )
    now = timezone.now()
    start, end = day_window(day=day, now=now, settle=SETTLE)
    results = []
    for source in sources:
        docs = _stripe_events(source=source, start=start, end=end, types=types)
        keys = {f"stripe:{event_id}": event_id for event_id in docs}
        present = event_ids_by_key(tenant_id=tenant_id, keys=keys)
        result = SourceDay(
            source_id=source.source_id,
            day=day,
            window_start=start,
            window_end=end,
            at_source=len(docs),
            missing=sorted(keys[k] for k in keys if k not in present),
        )
        if repair and result.missing:
            _repair(tenant_id=tenant_id, source=source, docs=docs, result=result)
            audit_record(
                actor=actor,
                user=user,
                action="reconcile.repair_source",
                tenant_id=tenant_id,
                target=f"{source.source_id} {day.isoformat()}",
                old={"missing_at_ingest": len(result.missing)},
                new={
                    "repaired": result.repaired,
                    "unrepairable": len(result.unrepairable),
                    "event_ids": result.missing[:AUDIT_IDS],
                },
            )
        _record(tenant_id=tenant_id, source=source, result=result, run_at=now)
        metrics.SOURCE_MISSING.labels(source=source.source_id).set(
            len(result.missing) - result.repaired
        )
        logger.info(
            "source reconciled",
            extra={
                "source_id": source.source_id,
                "day": day.isoformat(),
                "at_source": result.at_source,
                "missing_at_ingest": len(result.missing),
                "repaired": result.repaired,
            },
        )
        results.append(result)
    return results


def _stripe_events(
    *, source: WebhookSource, start: datetime, end: datetime, types: list[str] | None
) -> dict[str, dict]:
    """The source account's events of the window by id; `stripe_failed` when Stripe fails."""
    client = stripe_client(source_api_key(source=source))
    try:
        return {
            doc["id"]: doc
            for doc in stripe_events_list(client=client, start=start, end=end, types=types)
        }
    except stripe.StripeError as exc:
        raise codes.STRIPE_FAILED.error(f"Stripe failed: {type(exc).__name__}: {exc}") from exc


def _tenant_active_check(tenant_id: uuid.UUID) -> None:
    """SourceReconcileError naming the state unless the tenant is active."""
    with tenant_scope(tenant_id):
        row = Tenant.objects.filter(pk=tenant_id).values_list("slug", "status").first()
    slug, status = row or (str(tenant_id), "unknown")
    if status != Tenant.Status.ACTIVE:
        raise SourceReconcileError(
            f"tenant {slug!r} is {status}: source reconcile calls the source system only for an "
            "active tenant"
        )


def _repair(*, tenant_id, source: WebhookSource, docs: dict, result: SourceDay) -> None:
    items = []
    for event_id in result.missing:
        try:
            items.append(stripe_event(source_id=source.source_id, doc=docs[event_id]))
        except DeliveryInvalid as exc:
            result.unrepairable[event_id] = str(exc)
    for begin in range(0, len(items), REPAIR_BATCH):
        # Again before each write: the listing at Stripe may have outlasted an offboarding start.
        _tenant_active_check(tenant_id)
        outcome = events_ingest(
            tenant_id=tenant_id, key_id=source.source_id, items=items[begin : begin + REPAIR_BATCH]
        )
        # A delivery that arrived meanwhile makes its event a duplicate: it is there all the same.
        result.repaired += sum(1 for r in outcome if r.status in ("accepted", "duplicate"))


_RECORD_SQL = """
INSERT INTO reconcile_source_run
    (tenant_id, source_id, kind, day, window_start, window_end, at_source, missing_at_ingest,
     repaired, run_at)
VALUES (%s::uuid, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, source_id, day) DO UPDATE SET
    window_start = EXCLUDED.window_start,
    window_end = EXCLUDED.window_end,
    at_source = EXCLUDED.at_source,
    missing_at_ingest = EXCLUDED.missing_at_ingest,
    repaired = EXCLUDED.repaired,
    run_at = EXCLUDED.run_at
"""


def _record(*, tenant_id, source: WebhookSource, result: SourceDay, run_at: datetime) -> None:
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(
            _RECORD_SQL,
            [
                str(tenant_id),
                source.source_id,
                source.kind,
                result.day,
                result.window_start,
                result.window_end,
                result.at_source,
                len(result.missing),
                result.repaired,
                run_at,
            ],
        )
