"""Parse and validate POST /v1/events bodies into events ready to store (no database access)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from codex import error_codes as codes
from codex.errors import DomainValueError

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 500
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAYLOAD_DEPTH = 64  # objects and arrays, the payload object itself included
DEFAULT_SOURCE = "sdk"

_TYPE_RE = re.compile(r"[a-z0-9_.:-]{1,100}")
# RFC 3339 date-time; the offset (Z or +hh:mm) is required.
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_FIELDS = frozenset({"idempotency_key", "type", "occurred_at", "source", "payload", "subject_id"})


class EventInvalid(DomainValueError):
    """One event failed validation (the message names the field): registry `invalid_request`.

    A batch item's `error` and the single event's answer are built from its message where it is
    raised; one that escapes to an edge is answered by the one mapping as `invalid_request`. Bound
    to its entry by class attributes and built as a plain ValueError is (one per invalid event on
    the hot path: no DomainError.__init__, no instance dict).
    """

    entry = codes.INVALID_REQUEST
    code = entry.code
    status_code = entry.status
    headers: Mapping[str, str] = MappingProxyType({})

    # EventInvalid(message): C-level init and str(), as fast as the ValueError it was.
    __init__ = Exception.__init__
    __str__ = Exception.__str__

    @property
    def message(self) -> str:
        return self.args[0]


# slots, not frozen: a frozen dataclass sets each field through object.__setattr__, which was a
# tenth of a batch event's validation cost. Treat instances as read-only all the same.
@dataclass(slots=True)
class ValidEvent:
    """An event that may be stored, with its content fingerprint (read-only by convention)."""

    idempotency_key: str
    type: str
    occurred_at: datetime
    source: str
    payload_json: str  # canonical JSON text
    fingerprint: str
    subject_id: str | None = None  # who the event is about (events_erase); None: nobody


@dataclass(slots=True)
class Item:
    """One position of the request: a valid event, or why it was rejected (read-only)."""

    idempotency_key: str | None
    event: ValidEvent | None
    error: str | None
    raw: Any = None  # the item as sent, kept only when rejected (ingestion warnings)


@dataclass(frozen=True)
class Parsed:
    """The request body: a single event or a batch, each position in request order."""

    batch: bool
    items: list[Item]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


# orjson reads integers beyond 64 bits as floats (stdlib keeps them exact): bodies with such long
# digit runs take the stdlib path, so every document means what it always meant.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no overflowing floats; any failure is malformed_json.

    orjson when it gives the same answer as the stdlib (it refuses NaN, Infinity and overflowing
    floats itself); the stdlib, with the same strictness, for everything else.
    """
    if not _LONG_DIGITS.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the stdlib decides, and words the error
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers.
        raise codes.MALFORMED_JSON.error(f"Body is not valid JSON: {exc}") from exc


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the form fingerprints are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# What json.dumps(ensure_ascii=False) escapes in a string: quote, backslash, control characters.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _json_string(value: str) -> str:
    """canonical_json(value) for a string, without building an encoder when nothing is escaped."""
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    return canonical_json(value)


def _no_nul(value: str, field: str) -> None:
    # PostgreSQL text (and jsonb strings) cannot hold NUL.
    if "\x00" in value:
        raise EventInvalid(f"{field}: must not contain NUL characters")


def _storable_text(value: str, field: str) -> None:
    # Lone surrogates cannot be encoded as UTF-8.
    _no_nul(value, field)
    if value.isascii():
        return  # ASCII always encodes (the common case, checked in C)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventInvalid(f"{field}: must be valid Unicode") from exc


def _echo(text: str) -> str:
    """Client text safe to put in a JSON answer: lone surrogates (unencodable) become '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


_INT64 = 2**63


def _check_payload_strings(value: Any) -> bool:
    """Validate every string and the depth; True when orjson serializes it as the stdlib does.

    That is: no float (their spelling differs: 1e+16 against 1e16) and no integer beyond 64 bits
    (orjson refuses those); tests/ingest/test_validation.py compares the two on random documents.
    """
    # Iterative, and depth-bounded before anything recursive (canonical_json, jsonb) sees it: near
    # Python's recursion limit json.loads succeeds where json.dumps fails (that was a 500).
    same = True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _no_nul(item, "payload")  # lone surrogates: caught when serialized (_payload_json)
        elif isinstance(item, float) or (isinstance(item, int) and not -_INT64 <= item < _INT64):
            same = False
        elif isinstance(item, (dict, list)):
            if depth > MAX_PAYLOAD_DEPTH:
                raise EventInvalid(f"payload: nested deeper than {MAX_PAYLOAD_DEPTH} levels")
            if isinstance(item, dict):
                for k, v in item.items():
                    _no_nul(k, "payload")
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)
    return same


def _payload_json(payload: dict, max_bytes: int) -> str:
    """The payload's canonical JSON text; EventInvalid if it is not storable or too large."""
    try:
        if _check_payload_strings(payload):
            text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
        else:
            text = canonical_json(payload)
        size = len(text.encode("utf-8"))
    except (UnicodeEncodeError, orjson.JSONEncodeError) as exc:
        # A lone surrogate: orjson refuses it, the stdlib's text cannot be encoded as UTF-8.
        raise EventInvalid("payload: must be valid Unicode") from exc
    if size > max_bytes:
        raise EventInvalid(f"payload: at most {max_bytes} bytes serialized")
    return text


def parse_occurred_at(value: Any) -> datetime:
    """An RFC 3339 timestamp with offset, as an aware datetime in UTC."""
    match = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise EventInvalid("occurred_at: must be an RFC 3339 date-time with offset")
    if match.group(7) is None and value[-1] == "Z" and value[10] == "T":
        try:  # the common spelling, YYYY-MM-DDTHH:MM:SSZ: already what fromisoformat reads
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise EventInvalid("occurred_at: not a valid date-time") from exc
    fraction = (match.group(7) or "")[:7]  # Python takes at most 6 digits
    text = value[: match.start(7)] if match.group(7) else value[: match.start(8)]
    text = text.replace("t", "T").replace(" ", "T") + fraction + match.group(8)
    text = text.replace("z", "Z")
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise EventInvalid("occurred_at: not a valid date-time") from exc


def validate_event(raw: Any, *, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> ValidEvent:
    """Validate one event object; raise EventInvalid naming the first bad field.

    `max_payload_bytes`: webhook sources store whole platform documents (up to the 1 MiB body).
    """
    if not isinstance(raw, dict):
        raise EventInvalid("event: must be a JSON object")
    if not _FIELDS.issuperset(raw):
        unknown = sorted(set(raw) - _FIELDS)
        raise EventInvalid(f"event: unknown field(s) {_echo(', '.join(unknown)[:200])}")
    key = raw.get("idempotency_key")
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise EventInvalid("idempotency_key: required, a string of 1 to 255 characters")
    _storable_text(key, "idempotency_key")
    etype = raw.get("type")
    if not isinstance(etype, str) or not _TYPE_RE.fullmatch(etype):
        raise EventInvalid("type: required, 1 to 100 characters of [a-z0-9_.:-]")
    if "occurred_at" not in raw:
        raise EventInvalid("occurred_at: required")
    occurred_at = parse_occurred_at(raw["occurred_at"])
    source = raw.get("source", DEFAULT_SOURCE)
    if not isinstance(source, str) or not 1 <= len(source) <= 64 or not source.isprintable():
        raise EventInvalid("source: a printable string of 1 to 64 characters")
    _storable_text(source, "source")
    subject_id = raw.get("subject_id")
    if subject_id is not None:
        if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 255:
            raise EventInvalid("subject_id: a string of 1 to 255 characters (or absent)")
        _storable_text(subject_id, "subject_id")
    payload = raw.get("payload", {})
    if not isinstance(payload, dict):
        raise EventInvalid("payload: must be a JSON object")
    payload_json = _payload_json(payload, max_payload_bytes)
    # canonical_json({"type", "occurred_at", "source", "payload"}) spelled out in sorted key order,
    # so the payload is serialized once, not twice (byte-identical: the stored fingerprints hold).
    # A subject is part of the content (same key, other subject: a conflict); events without
    # one keep the fingerprint they always had.
    subject = "" if subject_id is None else f',"subject_id":{_json_string(subject_id)}'
    # An isoformat() and a type matching _TYPE_RE never need escaping: quoted as they are.
    content = (
        f'{{"occurred_at":"{occurred_at.isoformat()}","payload":{payload_json},'
        f'"source":{_json_string(source)}{subject},"type":"{etype}"}}'
    )
    return ValidEvent(
        idempotency_key=key,
        type=etype,
        occurred_at=occurred_at,
        source=source,
        payload_json=payload_json,
        fingerprint=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        subject_id=subject_id,
    )


def _item(raw: Any) -> Item:
    key = raw.get("idempotency_key") if isinstance(raw, dict) else None
    key = (key if key.isascii() else _echo(key)) if isinstance(key, str) else None
    try:
        return Item(idempotency_key=key, event=validate_event(raw), error=None)
    except EventInvalid as exc:
        return Item(idempotency_key=key, event=None, error=str(exc), raw=raw)


def parse_body(body: bytes) -> Parsed:
    """Parse the request body; `malformed_json` or `invalid_request` for request-level failures."""
    doc = loads(body)
    if isinstance(doc, dict) and "events" in doc:
        events = doc["events"]
        if set(doc) != {"events"}:
            raise codes.INVALID_REQUEST.error("A batch has only the key 'events'.")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
            raise codes.INVALID_REQUEST.error(
                f"'events' must be a list of 1 to {MAX_BATCH} events."
            )
        return Parsed(batch=True, items=[_item(raw) for raw in events])
    if not isinstance(doc, dict):
        raise codes.INVALID_REQUEST.error('The body must be one event object or {"events": [...]}.')
    item = _item(doc)
    if item.error:
        raise codes.INVALID_REQUEST.error(item.error)
    return Parsed(batch=False, items=[item])
