"""What enrichment computes for one event: pure functions, no database (services.enrich writes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from ingest import metrics

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"], 0),
    **dict.fromkeys(["RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}
_MAX_MINOR = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")
# An amount whose decimal exponent is beyond this cannot be a price: it is not parsed any further
# (Decimal arithmetic on 1e999999 overflows, and 1e-999999 is a billion-digit rounding).
_MAX_EXPONENT = 30


# Where the amount and currency sit: the /v1/events fields, or a webhook source's envelope
# (ingest.webhooks.shapes).
# Only events a source wrote (key_id src_..., set by the server, never by a client) are read as
# envelopes; everything else keeps the /v1/events fields payload.amount / amount_minor / currency.
_FROM_SOURCE = "left(key_id, 4) = 'src_'"
ENRICH_AMOUNT = (
    f"CASE WHEN {_FROM_SOURCE} AND source = 'shopify' THEN payload#>'{{body,total_price}}'"
    f" WHEN {_FROM_SOURCE} AND source = 'stripe' THEN NULL"
    f" WHEN {_FROM_SOURCE} THEN payload#>'{{body,amount}}'"
    " ELSE payload->'amount' END"
)
ENRICH_AMOUNT_MINOR = (
    f"CASE WHEN {_FROM_SOURCE} AND source = 'stripe' THEN payload#>'{{body,data,object,amount}}'"
    f" WHEN {_FROM_SOURCE} AND source = 'shopify' THEN NULL"
    f" WHEN {_FROM_SOURCE} THEN payload#>'{{body,amount_minor}}'"
    " ELSE payload->'amount_minor' END"
)
ENRICH_CURRENCY = (
    f"CASE WHEN {_FROM_SOURCE} AND source = 'shopify' THEN payload#>>'{{body,currency}}'"
    f" WHEN {_FROM_SOURCE} AND source = 'stripe' THEN payload#>>'{{body,data,object,currency}}'"
    f" WHEN {_FROM_SOURCE} THEN payload#>>'{{body,currency}}'"
    " ELSE payload->>'currency' END"
)


class EnrichmentFault(RuntimeError):
    """A failure injected with settings.CODEX_ENRICH_FAIL_TYPES (drills and tests)."""


@dataclass(frozen=True, slots=True)
class Source:
    """The ledger columns enrichment reads (payload fields extracted by the claim query)."""

    id: int
    type: str
    source: str
    occurred_at: datetime
    received_at: datetime
    amount_type: str | None  # jsonb_typeof(payload.amount): number, string, ... or None
    amount: str | None  # payload.amount as text
    minor_type: str | None  # jsonb_typeof(payload.amount_minor)
    amount_minor: str | None  # payload.amount_minor as text
    currency: str | None  # payload.currency as text


def currency_of(value: str | None) -> str:
    """A three-letter currency code, upper-cased, or ""."""
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return ""


def amount_minor_of(src: Source, currency: str) -> int | None:
    """Minor units from `amount_minor` (a JSON integer) or `amount` (decimal, major units).

    Values that cannot be an amount (not a number, not finite, absurd exponents, beyond 64 bits)
    give None and count codex_enrich_amount_unusable_total: the event still enriches.
    """
    if src.minor_type == "number" and _INTEGER.fullmatch(src.amount_minor or ""):
        minor = int(src.amount_minor)
        if abs(minor) <= _MAX_MINOR:
            return minor
        metrics.AMOUNT_UNUSABLE.inc()
        return None
    if src.amount_type not in ("number", "string"):
        return None
    try:
        value = Decimal(src.amount)
        if not value.is_finite() or abs(value.adjusted()) > _MAX_EXPONENT:
            metrics.AMOUNT_UNUSABLE.inc()
            return None
        value = value.scaleb(_EXPONENTS.get(currency, 2)).to_integral_value()
    except (InvalidOperation, ArithmeticError, ValueError):
        metrics.AMOUNT_UNUSABLE.inc()
        return None
    if abs(value) > _MAX_MINOR:
        metrics.AMOUNT_UNUSABLE.inc()
        return None
    return int(value)


def enriched_values(src: Source) -> tuple:
    """The events_enriched column values of one event, in ENRICHED_COLUMNS order.

    Raises on an event that cannot be enriched (today only an injected fault): the caller retries
    it and, past retryCap, dead-letters it, without holding up the rest of its batch.
    """
    if src.type in getattr(settings, "CODEX_ENRICH_FAIL_TYPES", ()):
        raise EnrichmentFault(f"enrichment fault injected for type {src.type!r}")
    currency = currency_of(src.currency)
    occurred_day: date = src.occurred_at.astimezone(UTC).date()
    lag = src.received_at - src.occurred_at
    return (
        src.id,
        src.type,
        src.source,
        src.occurred_at,
        occurred_day,
        src.received_at,
        amount_minor_of(src, currency),
        currency,
        int(lag.total_seconds() * 1000),
    )
