"""Local validation and wire serialisation of events, mirroring the server's limits."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

MAX_TYPE_LEN = 100
MAX_SOURCE_LEN = 64
MAX_KEY_LEN = 255
MAX_SUBJECT_LEN = 255
MAX_PAYLOAD_BYTES = 64 * 1024

_TYPE_RE = re.compile(r"[a-z0-9_.:-]{1,100}")
# RFC 3339 date-time; fromisoformat alone would accept many non-RFC 3339 shapes.
_RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def utc_now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC))


def format_rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware (naive datetimes are ambiguous)")
    # Explicit "+00:00" rather than "Z": accepted by every RFC 3339 parser, incl. fromisoformat.
    return dt.isoformat(timespec="milliseconds")


def _check_occurred_at(value: datetime | str | None) -> str:
    if value is None:
        return utc_now_rfc3339()
    if isinstance(value, datetime):
        return format_rfc3339(value)
    if isinstance(value, str):
        if not _RFC3339_RE.fullmatch(value):
            raise ValueError(f"occurred_at is not an RFC 3339 timestamp with offset: {value!r}")
        try:
            datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"occurred_at is not a valid date-time: {value!r}") from exc
        # Passed through verbatim: rewriting it would change the event's content hash.
        return value
    raise ValueError("occurred_at must be a datetime, an RFC 3339 string or None")


def build_event(
    type: str,
    payload: dict[str, Any] | None = None,
    *,
    occurred_at: datetime | str | None = None,
    idempotency_key: str | None = None,
    source: str = "sdk",
    subject_id: str | None = None,
) -> dict[str, Any]:
    """Validate inputs and return the event object exactly as it will be sent.

    `subject_id`: who the event is about (a customer, a person), so the platform can erase
    that subject's events on request. Raises ValueError for anything the server would
    certainly reject.
    """
    if not isinstance(type, str) or not _TYPE_RE.fullmatch(type):
        raise ValueError(f"type must be 1-{MAX_TYPE_LEN} characters of [a-z0-9_.:-], got {type!r}")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValueError(f"payload must be a dict, got {payload.__class__.__name__}")
    try:
        # Measured with default separators and ASCII escaping: the largest common encoding,
        # so anything passing here also passes however the server re-serialises it.
        measured = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload is not JSON-serialisable: {exc}") from exc
    if len(measured.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes when serialised")
    if idempotency_key is None:
        idempotency_key = str(uuid.uuid4())
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= MAX_KEY_LEN:
        raise ValueError(f"idempotency_key must be a string of 1-{MAX_KEY_LEN} characters")
    if not isinstance(source, str) or not 1 <= len(source) <= MAX_SOURCE_LEN:
        raise ValueError(f"source must be a string of 1-{MAX_SOURCE_LEN} characters")
    if subject_id is not None and (
        not isinstance(subject_id, str)
        or not 1 <= len(subject_id) <= MAX_SUBJECT_LEN
        or "\x00" in subject_id
    ):
        raise ValueError(
            f"subject_id must be a string of 1-{MAX_SUBJECT_LEN} characters (no NUL) or None"
        )
    event = {
        "idempotency_key": idempotency_key,
        "type": type,
        "occurred_at": _check_occurred_at(occurred_at),
        "source": source,
        # Round-trip so the stored event cannot be mutated later through the caller's dict.
        "payload": json.loads(measured),
    }
    if subject_id is not None:
        # Only when set: events without a subject stay byte-identical to older SDKs' events.
        event["subject_id"] = subject_id
    return event


def encode_event(event: dict[str, Any]) -> str:
    """Compact, ASCII-only JSON: what is stored is byte-for-byte what goes on the wire."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def encode_batch(encoded_events: list[str]) -> bytes:
    return ('{"events":[' + ",".join(encoded_events) + "]}").encode("ascii")


BATCH_OVERHEAD = len(encode_batch([]))
