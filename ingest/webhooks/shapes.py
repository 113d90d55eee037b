"""What a delivery of each platform becomes in the ledger: key, type, time, payload envelope.

Pure functions, no database. The stored payload is an envelope, {"source_id", "kind", ...the
platform's delivery facts..., "body": <the platform's JSON>}, so nothing of the platform's document
is renamed or lost and the facts that come in headers (Shopify's shop domain and topic) stay with
the event. Enrichment reads amounts out of it with ingest.enrichment.ENRICH_*.

Idempotency keys are built only from what the signature covers (docs/sources.md, "Idempotency
keys come from signed content"): Shopify signs the body alone, so its key is the body's digest,
never a header; a Standard Webhooks key is the signed webhook-id within its own source.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from codex import error_codes as codes
from codex.errors import DomainValueError
from ingest.validation import MAX_BODY_BYTES as MAX_DELIVERY_BYTES
from ingest.validation import EventInvalid, Item, parse_occurred_at, validate_event

_TYPE_RE = re.compile(r"[a-z0-9_.:-]{1,100}")
_MAX_ID_LEN = 200
# standard:<source id (61)>:<webhook-id> within the ledger's 255-character keys.
MAX_STANDARD_ID_LEN = 255 - len("standard:") - 61 - 1


class DeliveryInvalid(DomainValueError):
    """A correctly signed delivery we cannot store (the message names what is wrong).

    Registry entry `invalid_delivery` (400): the one mapping answers it, nothing converts it.
    """

    def __init__(self, message: str):
        super().__init__(codes.INVALID_DELIVERY, message)


def _event(
    *,
    key: str,
    etype: str,
    occurred_at: datetime,
    kind: str,
    payload: dict[str, Any],
    subject_id: str | None = None,
) -> Item:
    raw = {
        "idempotency_key": key,
        "type": etype,
        "occurred_at": occurred_at.isoformat(),
        "source": kind,
        "payload": payload,
    }
    if subject_id is not None:
        raw["subject_id"] = subject_id
    try:
        event = validate_event(
            raw,
            max_payload_bytes=2 * MAX_DELIVERY_BYTES,  # the body itself is at most 1 MiB
        )
    except EventInvalid as exc:  # in a delivery, an invalid event is an invalid delivery
        raise DeliveryInvalid(str(exc)) from exc
    return Item(idempotency_key=key, event=event, error=None)


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_ID_LEN or not value.isprintable():
        raise DeliveryInvalid(f"{what}: required, 1 to {_MAX_ID_LEN} printable characters")
    return value


def _subject(value: Any) -> str | None:
    """A customer id as the event's subject_id (events_erase finds it), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 1 <= len(value) <= 255 and value.isprintable():
        return value
    return None


def shopify_subject(doc: dict) -> str | None:
    """Shopify: the customer's id (orders carry `customer`, customers/* topics are one)."""
    customer = doc.get("customer")
    if isinstance(customer, dict):
        return _subject(customer.get("id"))
    return _subject(doc.get("customer_id"))


def stripe_subject(doc: dict) -> str | None:
    """Stripe: data.object.customer (an id, or an expanded object), or a customer object's id."""
    obj = doc.get("data", {}).get("object") if isinstance(doc.get("data"), dict) else None
    if not isinstance(obj, dict):
        return None
    if obj.get("object") == "customer":
        return _subject(obj.get("id"))
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return _subject(customer)


def path_subject(doc: dict, path: str) -> str | None:
    """The subject id at a dotted path of object keys (`customer.id`), or None."""
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return _subject(value)


def _type(value: str, what: str) -> str:
    if not _TYPE_RE.fullmatch(value):
        raise DeliveryInvalid(f"{what}: 1 to 100 characters of [a-z0-9_.:-], not {value[:100]!r}")
    return value


def shopify_key(*, source_id: str, body: bytes) -> str:
    """shopify:<source id>:<sha256 of the raw body>: the signed content, nothing unsigned.

    A replayed body under a fresh X-Shopify-Event-Id or another X-Shopify-Topic has the same key
    (a duplicate); Shopify's retries resend the same body (a duplicate too); a changed order is
    another body (its updated_at moves), so another event.
    """
    return f"shopify:{source_id}:{hashlib.sha256(body).hexdigest()}"


def standard_key(*, source_id: str, webhook_id: str) -> str:
    """standard:<source id>:<webhook-id>: each sender's ids in their own space."""
    return f"standard:{source_id}:{webhook_id}"


def _header_id(value: str | None) -> str | None:
    """A delivery id from a header, kept as a fact (None when absent or not sane)."""
    if value and len(value) <= _MAX_ID_LEN and value.isprintable():
        return value
    return None


def shopify_event(
    *, source_id: str, doc: Any, body: bytes, headers: Mapping[str, str], received_at: datetime
) -> Item:
    """sha256 of the raw body -> key (shopify_key); X-Shopify-Topic -> shopify.<topic with .>.

    The topic, the trigger time and the ids in headers are not signed: they name the event's type
    and time, but never its key, so they cannot make a captured body a second event.
    """
    if not isinstance(doc, dict):
        raise DeliveryInvalid("the body must be a JSON object")
    topic = headers.get("x-shopify-topic", "")
    if not topic:
        raise DeliveryInvalid("X-Shopify-Topic is required")
    etype = _type("shopify." + topic.strip().lower().replace("/", "."), "X-Shopify-Topic")
    triggered = headers.get("x-shopify-triggered-at", "")
    try:
        occurred_at = parse_occurred_at(triggered) if triggered else received_at
    except EventInvalid:
        occurred_at = received_at  # documented fallback: the time we received it
    payload = {
        "source_id": source_id,
        "kind": "shopify",
        "shop_domain": headers.get("x-shopify-shop-domain") or None,
        "topic": topic,
        "api_version": headers.get("x-shopify-api-version") or None,
        "event_id": _header_id(
            headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
        ),
        "body": doc,
    }
    return _event(
        key=shopify_key(source_id=source_id, body=body),
        etype=etype,
        occurred_at=occurred_at,
        kind="shopify",
        payload=payload,
        # customers/* topics deliver the customer itself; orders, refunds, ... name theirs.
        subject_id=_subject(doc.get("id"))
        if topic.startswith("customers/")
        else shopify_subject(doc),
    )


def stripe_event(*, source_id: str, doc: Any, received_at: datetime | None = None) -> Item:
    """A Stripe event object: id -> key, stripe.<type>, occurred_at from created."""
    if not isinstance(doc, dict):
        raise DeliveryInvalid("the body must be a Stripe event object")
    event_id = _id(doc.get("id"), "id")
    etype = doc.get("type")
    if not isinstance(etype, str):
        raise DeliveryInvalid("type: required")
    created = doc.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < 2**34:
        raise DeliveryInvalid("created: required, unix seconds")
    payload = {
        "source_id": source_id,
        "kind": "stripe",
        "account": doc.get("account") if isinstance(doc.get("account"), str) else None,
        "livemode": doc.get("livemode") if isinstance(doc.get("livemode"), bool) else None,
        "body": doc,
    }
    return _event(
        key="stripe:" + event_id,
        etype=_type("stripe." + etype, "type"),
        occurred_at=datetime.fromtimestamp(created, UTC),
        kind="stripe",
        payload=payload,
        subject_id=stripe_subject(doc),
    )


def standard_event(
    *,
    source_id: str,
    doc: Any,
    headers: Mapping[str, str],
    type_field: str,
    subject_field: str = "",
) -> Item:
    """standard_key -> key; the type from the body's `type_field`; occurred_at = webhook-timestamp.

    With a `subject_field` (a dotted path), the id found there is the event's subject_id.
    """
    if not isinstance(doc, dict):
        raise DeliveryInvalid("the body must be a JSON object")
    etype = doc.get(type_field)
    if not isinstance(etype, str):
        raise DeliveryInvalid(f"{type_field}: required, the event type")
    webhook_id = _id(headers.get("webhook-id"), "webhook-id")
    if len(webhook_id) > MAX_STANDARD_ID_LEN:
        raise DeliveryInvalid(f"webhook-id: at most {MAX_STANDARD_ID_LEN} characters")
    payload = {"source_id": source_id, "kind": "standard", "body": doc}
    return _event(
        key=standard_key(source_id=source_id, webhook_id=webhook_id),
        etype=_type(etype, type_field),
        occurred_at=datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC),
        kind="standard",
        payload=payload,
        subject_id=path_subject(doc, subject_field) if subject_field else None,
    )
