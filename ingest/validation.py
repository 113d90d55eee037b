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
from typing import Annotated, Any

import msgspec
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
    occurred_iso: str  # occurred_at.isoformat(), as the fingerprint spells it (the write sends it)
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


def _plain(value: dict | list, depth: int) -> bool:
    """True when _check_payload_strings(value) would return True, raising nothing.

    That is: no NUL, no float, no integer beyond 64 bits, no deeper nesting than allowed. False
    when unsure: the walk decides (its order decides which of two faults is named). Recursive (at
    most MAX_PAYLOAD_DEPTH frames), exact types only: three times as fast as the walk.
    """
    if depth > MAX_PAYLOAD_DEPTH:
        return False
    if type(value) is dict:
        for key in value:
            if type(key) is not str or "\x00" in key:
                return False
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return False
        elif kind is int:
            if not -_INT64 <= item < _INT64:
                return False
        elif kind is dict or kind is list:
            if not _plain(item, depth + 1):
                return False
        elif kind is not bool and item is not None:
            return False
    return True


def _payload_json(payload: dict, max_bytes: int) -> str:
    """The payload's canonical JSON text; EventInvalid if it is not storable or too large."""
    try:
        if _plain(payload, 1) or _check_payload_strings(payload):
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


# The common spellings of occurred_at in UTC (seconds, milliseconds as JavaScript's toISOString
# writes them, microseconds), as their ASCII bytes read with every digit a 0: where the fraction
# ends. Each matches _RFC3339_RE and parse_occurred_at reads it with fromisoformat as it is.
_ZEROS = bytes.maketrans(b"123456789", b"0" * 9)
_COMMON_AT = {
    b"0000-00-00T00:00:00Z": 19,
    b"0000-00-00T00:00:00.000Z": 23,
    b"0000-00-00T00:00:00.000000Z": 26,
}


def _occurred_at(value: str) -> tuple[datetime, str] | None:
    """parse_occurred_at(value) and its isoformat(), cheaper; None: invalid (it words why)."""
    end = _COMMON_AT.get(value.encode().translate(_ZEROS)) if value.isascii() else None
    try:
        if end is not None:
            parsed = datetime.fromisoformat(value)  # in UTC already
            # Its isoformat() without the call (most of a microsecond: it asks the tzinfo):
            # six fraction digits, none when they are all 0.
            if end == 19 or not parsed.microsecond:
                return parsed, value[:19] + "+00:00"
            return parsed, f"{value[:end]}{'0' * (26 - end)}+00:00"
        match = _RFC3339_RE.fullmatch(value)
        if match is None:
            return None
        if value[10] == "T" and value[-1] != "z" and match.end(7) - match.start(7) <= 7:
            # parse_occurred_at would rewrite nothing (separator, fraction, offset).
            parsed = datetime.fromisoformat(value).astimezone(UTC)
        else:
            parsed = parse_occurred_at(value)
    except (ValueError, OverflowError):  # EventInvalid too
        return None
    return parsed, parsed.isoformat()


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
    at = raw["occurred_at"]
    when = _occurred_at(at) if type(at) is str else None
    if when is None:
        occurred_at = parse_occurred_at(at)  # raises for a str: _occurred_at read every valid one
        iso = occurred_at.isoformat()
    else:
        occurred_at, iso = when
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
    return _valid_event(key, etype, occurred_at, iso, source, payload_json, subject_id)


def _valid_event(
    key: str,
    etype: str,
    occurred_at: datetime,
    iso: str,
    source: str,
    payload_json: str,
    subject_id: str | None,
) -> ValidEvent:
    """The event with its fingerprint (both paths build it here: the fingerprint is one text)."""
    # canonical_json({"type", "occurred_at", "source", "payload"}) spelled out in sorted key order,
    # so the payload is serialized once, not twice (byte-identical: the stored fingerprints hold).
    # A subject is part of the content (same key, other subject: a conflict); events without
    # one keep the fingerprint they always had.
    subject = "" if subject_id is None else f',"subject_id":{_json_string(subject_id)}'
    # An isoformat() and a type matching _TYPE_RE never need escaping: quoted as they are.
    content = (
        f'{{"occurred_at":"{iso}","payload":{payload_json},'
        f'"source":{_json_string(source)}{subject},"type":"{etype}"}}'
    )
    fingerprint = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return ValidEvent(key, etype, occurred_at, source, payload_json, fingerprint, iso, subject_id)


def _item(raw: Any) -> Item:
    key = raw.get("idempotency_key") if isinstance(raw, dict) else None
    key = (key if key.isascii() else _echo(key)) if isinstance(key, str) else None
    try:
        return Item(idempotency_key=key, event=validate_event(raw), error=None)
    except EventInvalid as exc:
        return Item(idempotency_key=key, event=None, error=str(exc), raw=raw)


# The fast path: msgspec decodes the common valid body straight into typed events, checking in C
# what validate_event checks in Python. It only ever accepts: anything it refuses or does not
# recognise returns None and the body takes the exact path above, the one producer of answers
# and error wording. tests/ingest/test_validation_fast.py compares the two on adversarial bodies.


class _Float(float):
    """A payload float read on the fast path: orjson refuses it, so the stdlib spells the payload.

    float.__repr__ writes it (1e+16 where orjson writes 1e16), as the exact path writes any
    payload holding a float.
    """

    __slots__ = ()


def _fast_float(text: str) -> float:
    value = _Float(text)  # float(): the stdlib decoder's parse, correctly rounded
    if not math.isfinite(value):
        raise ValueError("number out of range")  # malformed_json: the exact path words it
    return value


# Lengths count code points in msgspec as len() does. No Meta patterns: msgspec runs them through
# Python's re at twice the cost of the checks in _fast_event.
_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    idempotency_key: _Key
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    occurred_at: str
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = DEFAULT_SOURCE
    payload: dict[str, Any] = {}
    subject_id: _Key | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: Annotated[list[_Event], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_BATCH = msgspec.json.Decoder(_Batch, float_hook=_fast_float)
_SINGLE = msgspec.json.Decoder(_Event, float_hook=_fast_float)
_SORTED = orjson.OPT_SORT_KEYS
_TYPE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.:-"  # _TYPE_RE's class


def _fast_when(raw: _Event) -> tuple[datetime, str] | None:
    """The event's occurred_at and its isoformat(); None if the type, source or time is invalid."""
    if raw.type.strip(_TYPE_CHARS) or not raw.source.isprintable():
        return None  # a type of other characters than [a-z0-9_.:-] (msgspec checked the length)
    return _occurred_at(raw.occurred_at)


def _fast_event(raw: _Event, occurred_at: datetime, iso: str) -> Item | None:
    """The Item validate_event gives a decoded event, or None for anything it might refuse."""
    payload = raw.payload
    try:
        data = orjson.dumps(payload, option=_SORTED)
        # The brackets bound the depth (any inside strings only overcount): walk only if needed.
        if data.count(b"{") + data.count(b"[") > MAX_PAYLOAD_DEPTH:
            _check_payload_strings(payload)
    except orjson.JSONEncodeError:
        # A float, an integer beyond 64 bits, or too deep for orjson: the stdlib spells it.
        try:
            _check_payload_strings(payload)
            data = canonical_json(payload).encode("utf-8")
        except (ValueError, RecursionError):  # EventInvalid, UnicodeEncodeError, digit limits
            return None
    except EventInvalid:
        return None
    if len(data) > MAX_PAYLOAD_BYTES:
        return None
    event = _valid_event(
        raw.idempotency_key,
        raw.type,
        occurred_at,
        iso,
        raw.source,
        data.decode(),
        raw.subject_id,
    )
    return Item(event.idempotency_key, event, None)


def _fast_parse(body: bytes) -> Parsed | None:
    """parse_body's answer for a body whose every event is valid; None: take the exact path."""
    if b"\\u0000" in body:
        return None  # a NUL can only be spelled so: the exact path names the field
    try:
        if b'"events"' in body:
            events = _BATCH.decode(body).events
            batch = True
        else:
            events = [_SINGLE.decode(body)]
            batch = False
    except (msgspec.MsgspecError, RecursionError):
        return None
    # The cheap checks of every event first: a batch the exact path must answer is mostly found
    # out before any payload is serialized or fingerprinted.
    whens = []
    for raw in events:
        when = _fast_when(raw)
        if when is None:
            return None
        whens.append(when)
    items = []
    for raw, (occurred_at, iso) in zip(events, whens, strict=True):
        item = _fast_event(raw, occurred_at, iso)
        if item is None:
            return None
        items.append(item)
    return Parsed(batch=batch, items=items)


def parse_body(body: bytes) -> Parsed:
    """Parse the request body; `malformed_json` or `invalid_request` for request-level failures."""
    parsed = _fast_parse(body) if isinstance(body, bytes) else None
    return _exact_parse(body) if parsed is None else parsed


def _exact_parse(body: bytes) -> Parsed:
    """parse_body for every body: the answer, and the error wording, the fast path never gives."""
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
