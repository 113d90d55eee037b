"""Accept one webhook delivery: verify it, rate-limit it, store it through events_ingest."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db import DatabaseError
from redis.exceptions import RedisError

from codex import context
from codex import error_codes as codes
from codex.errors import DomainError
from flags.selectors import effective_flags_cached
from ingest import ingest_warnings, metrics, ratelimit
from ingest.services.accept import events_ingest
from ingest.validation import loads
from ingest.webhooks import guard, shapes
from ingest.webhooks.selectors import event_ids_by_key
from ingest.webhooks.verify import VERIFIERS
from tenants.selectors import ResolvedSource, source_resolve_cached, tenant_of_source_id
from tenants.services.sources import source_touch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What happened to a delivery that was stored (or already was)."""

    status: str  # accepted | duplicate
    event_id: int
    idempotency_key: str


@dataclass
class DeliveryAttempt:
    """One delivery on its way in: what the edge knows, and the source once it is found.

    The edge keeps it to label its metrics whatever the outcome (`source` stays None when the
    delivery was refused before its source was known).
    """

    source_id: str
    address: str
    source: ResolvedSource | None = None


def delivery_receive(
    attempt: DeliveryAttempt, *, body: bytes, headers: Mapping[str, str]
) -> Delivery:
    """The whole path of one delivery: the one service the webhook view calls.

    Unverified-traffic limit (before any lookup), the source, the platform's signature, a Shopify
    body already stored, the source's rate limit, the event's shape (a signed delivery refused
    for its content leaves an ingestion warning), the idempotent write. Raises DomainErrors.
    """
    source_id, address = attempt.source_id, attempt.address
    # Before the lookup: a flood of unverified deliveries spends no lookup or decrypt.
    guard.unverified_check(source_id=source_id, address=address)
    try:
        attempt.source = source = source_for_delivery(source_id)
    except DomainError as exc:
        if exc.entry is codes.UNKNOWN_SOURCE:
            guard.unverified_count(source_id=source_id, address=address)
        raise
    context.bind_tenant(source.tenant_id)
    try:
        delivery_verify(source=source, body=body, headers=headers)
    except DomainError as exc:
        metrics.SOURCE_SIGNATURE_FAILURES.labels(
            tenant=source.tenant_slug, kind=source.kind, source=source.source_id, code=exc.code
        ).inc()
        guard.unverified_count(source_id=source_id, address=address)
        raise
    delivery = delivery_seen(source=source, body=body)
    if delivery is not None:
        return delivery
    delivery_rate_limit(source=source)
    try:
        item = delivery_event(source=source, body=body, headers=headers)
    except DomainError as exc:  # correctly signed, refused for its content: a trace
        delivery_refused_record(source=source, body=body, headers=headers, error=exc)
        raise
    delivery = delivery_store(source=source, item=item)
    delivery_seen_mark(source=source, body=body, delivery=delivery)
    return delivery


def source_for_delivery(source_id: str) -> ResolvedSource:
    """The enabled source a delivery is for: unknown_source, source_disabled, tenant_suspended.

    A stored secret no key decrypts raises SecretUndecryptable (answered 503 unavailable).
    """
    # An id not of our form costs no lookup, and no key-cache entry of it evicts a real one.
    source = (
        source_resolve_cached(source_id) if tenant_of_source_id(source_id) is not None else None
    )
    if source is None:
        raise codes.UNKNOWN_SOURCE.error()
    if not source.enabled:
        raise codes.SOURCE_DISABLED.error()
    if not source.tenant_active:
        raise codes.TENANT_SUSPENDED.error()
    return source


def delivery_verify(*, source: ResolvedSource, body: bytes, headers: Mapping[str, str]) -> None:
    """The platform's own signature, with every secret valid now; SignatureRejected (401) if not."""
    VERIFIERS[source.kind](body=body, headers=headers, secrets=source.secrets_at(datetime.now(UTC)))


def delivery_rate_limit(*, source: ResolvedSource) -> None:
    """The source's own limit (sourceRatePerSec), then the tenant's; rate_limited when over.

    The source's window is checked first, so a flooding source is throttled without spending the
    budget the tenant's other senders (POST /v1/events) share.
    """
    flags = effective_flags_cached(tenant_id=source.tenant_id)
    decision = ratelimit.check(
        tenant_id=f"{source.tenant_id}:{source.source_id}", limit=int(flags["sourceRatePerSec"])
    )
    if not decision.limited:
        decision = ratelimit.check(tenant_id=source.tenant_id, limit=int(flags["ingestRatePerSec"]))
    if decision.limited:
        raise codes.RATE_LIMITED.error(
            f"More than {decision.limit} deliveries per second; retry after the given seconds.",
            retry_after=decision.reset_s,
        )


def delivery_event(*, source: ResolvedSource, body: bytes, headers: Mapping[str, str]):
    """The ledger item of a verified delivery; malformed_json or DeliveryInvalid (400) if none."""
    doc = loads(body)
    if source.kind == "shopify":
        return shapes.shopify_event(
            source_id=source.source_id,
            doc=doc,
            body=body,
            headers=headers,
            received_at=datetime.now(UTC),
        )
    if source.kind == "stripe":
        return shapes.stripe_event(source_id=source.source_id, doc=doc)
    return shapes.standard_event(
        source_id=source.source_id,
        doc=doc,
        headers=headers,
        type_field=source.type_field,
        subject_field=source.subject_field,
    )


def _refused_key(source: ResolvedSource, body: bytes, headers: Mapping[str, str]) -> str:
    """The key a refused delivery would have had, where the signed content names it."""
    if source.kind == "shopify":
        return shapes.shopify_key(source_id=source.source_id, body=body)
    webhook_id = headers.get("webhook-id", "")
    if source.kind == "standard" and len(webhook_id) <= shapes.MAX_STANDARD_ID_LEN:
        return shapes.standard_key(source_id=source.source_id, webhook_id=webhook_id)
    return ""


def delivery_refused_record(
    *, source: ResolvedSource, body: bytes, headers: Mapping[str, str], error: DomainError
) -> None:
    """A correctly signed delivery we refuse becomes an ingestion warning of its source.

    Code, message, the key it would have had and a bounded excerpt of the body (never a header,
    so never a signature, and never the secret); best effort, as every ingestion warning.
    """
    ingest_warnings.ingest_warnings_record(
        tenant_id=source.tenant_id,
        tenant_slug=source.tenant_slug,
        key_id=source.source_id,
        entries=[
            ingest_warnings.WarningEntry(
                code=error.code,
                message=error.message,
                item=ingest_warnings.body_text(body),
                idempotency_key=_refused_key(source, body, headers),
            )
        ],
    )


# A stored Shopify body is remembered this long (its key is the body's digest): a replay of a
# captured body is answered `duplicate` before the source's rate limit, so replays spend none of
# the budget the platform's real deliveries need.
SEEN_TTL_S = 24 * 3600


def _seen_key(source: ResolvedSource, body: bytes) -> str | None:
    if source.kind != "shopify":
        return None  # Stripe and Standard bodies carry their own time: their signatures expire
    return f"src:seen:{shapes.shopify_key(source_id=source.source_id, body=body)}"


def delivery_seen(*, source: ResolvedSource, body: bytes) -> Delivery | None:
    """The earlier answer for a Shopify body stored before (None: not known, or Redis down)."""
    key = _seen_key(source, body)
    if key is None:
        return None
    try:
        event_id = cache.get(key)
    except (RedisError, OSError):
        return None  # the ledger's idempotency still answers duplicate
    if event_id is None:
        return None
    _counts.note(source, accepted=False)
    return Delivery("duplicate", int(event_id), key.removeprefix("src:seen:"))


def delivery_seen_mark(*, source: ResolvedSource, body: bytes, delivery: Delivery) -> None:
    """Remember a stored Shopify body (best effort)."""
    key = _seen_key(source, body)
    if key is None or delivery.event_id is None:
        return
    try:
        cache.set(key, delivery.event_id, timeout=SEEN_TTL_S)
    except (RedisError, OSError):
        logger.warning("could not remember a stored delivery", extra={"source": source.source_id})


def delivery_store(*, source: ResolvedSource, item) -> Delivery:
    """Store the event through the /v1/events write path (idempotent per tenant and key).

    A key seen before is a duplicate even when the content differs (a platform's retry may carry
    a new pending_webhooks count or receipt-time fallback): the first delivery stays, and the
    answer is 200 so the platform stops retrying.
    """
    [result] = events_ingest(tenant_id=source.tenant_id, key_id=source.source_id, items=[item])
    key = item.event.idempotency_key
    event_id = result.id
    if result.status == "conflict":
        event_id = event_ids_by_key(tenant_id=source.tenant_id, keys=[key])[key]
    accepted = result.status == "accepted"
    _counts.note(source, accepted=accepted)
    return Delivery("accepted" if accepted else "duplicate", event_id, key)


class _Counts:
    """A source's delivery counts and last-received time, written at most once a second.

    One UPDATE of the source row per delivery made a flood queue on that row's lock (every
    delivery of a source updates the same row). Counts are noted here and written by the first
    delivery at least TOUCH_EVERY_S after the last write, so a lone delivery is counted at once
    and a burst costs one UPDATE a second per process; what a burst's last second noted waits
    for the source's next delivery (or `flush`). They are informational: the ledger is the
    record, and codex_ingest_source_deliveries_total counts every delivery.
    """

    TOUCH_EVERY_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list] = {}  # source id -> [tenant id, accepted, duplicate]
        self._written: dict[str, float] = {}

    def note(self, source: ResolvedSource, *, accepted: bool) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._pending.setdefault(source.source_id, [source.tenant_id, 0, 0])
            entry[1 if accepted else 2] += 1
            if now - self._written.get(source.source_id, -1e9) < self.TOUCH_EVERY_S:
                return
            self._written[source.source_id] = now
            del self._pending[source.source_id]
        self._write(source.source_id, entry)

    def flush(self) -> None:
        """Write every pending count now."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for source_id, entry in pending.items():
            self._write(source_id, entry)

    def _write(self, source_id: str, entry: list) -> None:
        tenant_id, accepted, duplicate = entry
        try:
            source_touch(
                tenant_id=tenant_id, source_id=source_id, accepted=accepted, duplicate=duplicate
            )
        except DatabaseError as exc:  # the event is stored; the counters are informational
            logger.warning("source touch failed", exc_info=exc, extra={"source_id": source_id})


_counts = _Counts()
source_counts_flush = _counts.flush
