"""Property-based fuzzing of POST /v1/events and GET /config: hostile input never answers 5xx.

Every answer is JSON in the error format (rid == X-Request-ID) or a success document, and a
request-level error stores nothing. Signed and unsigned requests, through the Django test client.
"""

from __future__ import annotations

import functools
import json
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flags.services import flag_update
from ingest.models import Event
from ingest.validation import MAX_BATCH, MAX_PAYLOAD_BYTES
from tenants.scope import tenant_scope
from tests.signing import django_headers

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ------------------------------------------------------------------------------

# Strings that have broken JSON handling, PostgreSQL text or UTF-8 encoding somewhere.
_NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\ud83d",
    "\u202e",
    "\ufeff",
    "é",
    "\U0001d518",
    "\u0661\u0662",
    "UPPER",
    "sale.completed",
    "a:b-c_d.e",
    "x" * 64,
    "x" * 65,
    "x" * 100,
    "x" * 101,
    "k" * 255,
    "k" * 256,
    "\n",
    "\t",
    "null",
]
nasty_text = st.one_of(
    st.sampled_from(_NASTY),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
# Any Unicode code point, lone surrogates included (json.dumps writes them as \\udXXX escapes).
any_text = st.one_of(nasty_text, st.text(st.characters(min_codepoint=0), max_size=12))

_NUMBERS = [0, -1, 2**63, -(2**63) - 1, 10**400, 1.5, -0.0, 1e308]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)

_TIMES = [
    "2026-01-15T10:30:00Z",
    "2026-01-15T10:30:00.123456789+02:00",
    "2026-01-15 10:30:00z",
    "2026-01-15T10:30:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "0000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-15T25:00:00Z",
    "2026-01-15T10:30:00+99:99",
    "\u0662\u0660\u0662\u0666-01-15T10:30:00Z",
    "",
]


def _blob(total: int) -> dict:
    """A payload whose canonical JSON is exactly `total` bytes: {"b":"xxx..."}."""
    return {"b": "x" * (total - len('{"b":""}'))}


payloads = st.one_of(
    st.dictionaries(any_text, json_values, max_size=4),
    st.integers(-2, 2).map(lambda d: _blob(MAX_PAYLOAD_BYTES + d)),
    st.sampled_from([[], "x", 1, None, {"amount": 1e308, "currency": "JPY"}]),
    st.sampled_from([10, 63, 64, 200, 900]).map(lambda d: {"d": json.loads("[" * d + "]" * d)}),
)


@st.composite
def events(draw):
    """A mostly valid event with hostile values dropped into some of its fields."""
    # A small pool of keys, so examples (which share the tenant) hit duplicates and conflicts.
    key = st.one_of(st.sampled_from(["k1", "k2", "k3"]), st.text(min_size=1, max_size=8))
    doc = {
        "idempotency_key": draw(st.one_of(key, key, any_text)),
        "type": "sale.completed",
        "occurred_at": "2026-01-15T10:30:00Z",
        "source": "pos",
        "payload": {"amount": "12.34", "currency": "EUR"},
    }
    if draw(st.integers(0, 2)) == 0:
        return doc  # valid unless the key is hostile: reaches the INSERT
    doc["payload"] = {"n": draw(st.integers(0, 3))}  # same key, other content: a conflict
    for field in draw(st.sets(st.sampled_from(sorted(doc)), max_size=2)):
        if draw(st.booleans()):
            del doc[field]
        elif field == "payload":
            doc[field] = draw(payloads)
        elif field == "occurred_at":
            doc[field] = draw(st.one_of(st.sampled_from(_TIMES), json_scalars))
        else:
            doc[field] = draw(json_scalars)
    if draw(st.integers(0, 9)) == 0:
        doc[draw(any_text)] = draw(json_scalars)  # an unknown field
    return doc


@st.composite
def batches(draw):
    """{"events": [...]} of 0, 1, a few, 500 or 501 events, with repeated keys."""
    size = draw(st.sampled_from([0, 1, 2, 3, 7, MAX_BATCH, MAX_BATCH + 1]))
    if size <= 7:
        return {"events": draw(st.lists(events(), min_size=size, max_size=size))}
    template = draw(events())
    distinct = draw(st.sampled_from([1, 50, size]))
    prefix = draw(st.text(st.characters(codec="ascii"), max_size=4))
    return {
        "events": [{**template, "idempotency_key": f"{prefix}-{i % distinct}"} for i in range(size)]
    }


wrong_shapes = st.one_of(
    json_values,
    st.lists(events(), max_size=3),
    events().map(lambda e: {"events": [{"events": [e]}]}),
    events().map(lambda e: {"events": [e], "extra": 1}),
    st.sampled_from([{"events": {}}, {"events": None}, {"events": "x"}, {"events": []}]),
)

_RAW = [
    b"",
    b"{",
    b"1e309",
    b'{"idempotency_key": 1e309}',
    b"[NaN]",
    b'{"a": Infinity}',
    b"9" * 5000,
    b"[" * 100_000,
    b"[" * 995 + b"]" * 995,
    b'{"payload": {"a": ' + b"[" * 990 + b"]" * 990 + b"}}",
    b"\xff\xfe{}",
    b"\xef\xbb\xbf{}",
    b'{"idempotency_key": "\\u0000"}',
    b'{"idempotency_key": "\\ud800", "type": "a", "occurred_at": "2026-01-15T10:30:00Z"}',
    b'{"events": [1, 2, 3]}',
    b'{"idempotency_key":"a","idempotency_key":"b"}',
]
raw_bodies = st.one_of(st.sampled_from(_RAW), st.binary(max_size=64))


def _encode(doc) -> bytes:
    return json.dumps(doc).encode()


_BODY_KINDS = ["event"] * 5 + ["batch"] * 3 + ["shape", "raw"]


@st.composite
def bodies(draw):
    """Body bytes: mostly single events and batches, some wrong shapes and raw junk."""
    kind = draw(st.sampled_from(_BODY_KINDS))
    if kind == "raw":
        return draw(raw_bodies)
    strategy = {"event": events(), "batch": batches(), "shape": wrong_shapes}[kind]
    return _encode(draw(strategy))


# What a WSGI server can hand us in a header: latin-1 text (it decodes the raw bytes that way).
header_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "v1,", "v1,=", "9" * 400, "-5", "1e9", "é"]),
    st.text(st.characters(max_codepoint=255), max_size=40),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/json;;",
        "application/jsonx",
        "application/merge-patch+json",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "\x00",
    ]
)
SIGNED_HEADERS = ["X-Codex-Key-Id", "webhook-id", "webhook-timestamp", "webhook-signature"]


@st.composite
def header_sets(draw, sign, body: bytes):
    """Correctly signed headers (most of the time), then possibly mangled, dropped or skewed."""
    mode = draw(st.sampled_from(["signed"] * 6 + ["mangled", "mangled", "skewed", "none"]))
    if mode == "none":
        headers = {h: draw(header_text) for h in draw(st.sets(st.sampled_from(SIGNED_HEADERS)))}
    elif mode == "skewed":
        skew = draw(st.sampled_from([-301, 301, -(10**6), 10**12]))
        headers = sign(body, timestamp=int(time.time()) + skew)
    else:
        headers = sign(body, msg_id=draw(st.one_of(st.none(), st.text(min_size=1, max_size=20))))
        if mode == "mangled":
            for name in draw(st.sets(st.sampled_from(SIGNED_HEADERS), min_size=1)):
                choice = draw(st.sampled_from(["drop", "garbage", "extend"]))
                if choice == "drop":
                    del headers[name]
                elif choice == "garbage":
                    headers[name] = draw(header_text)
                else:
                    headers[name] = headers[name] + draw(header_text)
    if draw(st.booleans()):
        headers["X-Request-ID"] = draw(header_text)
    return headers


# --- properties ------------------------------------------------------------------------------


def _event_count(tenant_id) -> int:
    with tenant_scope(tenant_id):
        return Event.objects.filter(tenant_id=tenant_id).count()


def _assert_well_formed(response) -> dict | None:
    """Never 5xx; X-Request-ID always; JSON always (but 304); errors in the one format."""
    status = response.status_code
    assert status < 500, (status, response.content[:500])
    rid = response.get("X-Request-ID")
    assert rid, "X-Request-ID missing"
    if status == 304:
        return None
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    doc = json.loads(response.content)
    if status >= 400:
        assert set(doc) == {"error"}, doc
        assert set(doc["error"]) == {"code", "message", "rid"}, doc
        assert isinstance(doc["error"]["code"], str)
        assert doc["error"]["code"]
        assert isinstance(doc["error"]["message"], str)
        assert doc["error"]["rid"] == rid
        if status == 401:
            assert response["WWW-Authenticate"].startswith("Codex-Signature")
    return doc


@pytest.fixture
def fast_tenant(signed):
    """The `signed` tenant with a rate limit the fuzzer cannot reach (429 is still tolerated)."""
    tenant = signed.tenant
    flag_update(
        tenant_id=tenant.id,
        values={"ingestRatePerSec": 100_000, "configRatePerSec": 100_000},
        actor="test-fuzz",
        via="cli",
        reason="fuzzing must not be throttled",
    )
    return signed


@FUZZ
@given(data=st.data())
def test_post_events_never_5xx_and_errors_store_nothing(client, fast_tenant, data):
    tenant = fast_tenant.tenant
    sign = fast_tenant.sign
    body = data.draw(bodies(), label="body")
    headers = data.draw(header_sets(sign, body), label="headers")
    content_type = data.draw(
        st.one_of(st.just("application/json"), st.just("application/json"), content_types),
        label="content_type",
    )
    before = _event_count(tenant.id)
    response = client.generic(
        "POST", "/v1/events", body, content_type=content_type, **django_headers(headers)
    )
    doc = _assert_well_formed(response)
    event(f"{response.status_code} {doc.get('error', {}).get('code', '') if doc else ''}")
    stored = _event_count(tenant.id) - before
    status = response.status_code
    if status >= 400:
        assert stored == 0, (status, doc)
    elif status == 202:
        assert doc["status"] == "accepted"
        assert isinstance(doc["id"], int)
        assert stored == 1
    elif "results" in doc:
        assert status == 200
        results = doc["results"]
        assert 1 <= len(results) <= MAX_BATCH
        assert len(results) == len(json.loads(body)["events"])
        counts = {s: sum(r["status"] == s for r in results) for s in _STATUSES}
        assert doc["accepted"] == counts["accepted"] == stored
        assert doc["duplicates"] == counts["duplicate"]
        assert doc["conflicts"] == counts["conflict"]
        assert doc["rejected"] == counts["rejected"]
        for result in results:
            assert (result["error"] is None) == (result["status"] in ("accepted", "duplicate"))
    else:
        assert status == 200, doc
        assert doc["status"] == "duplicate", doc
        assert stored == 0


_STATUSES = ("accepted", "duplicate", "conflict", "rejected")


@FUZZ
@given(data=st.data())
def test_get_config_headers_never_5xx(client, fast_tenant, data):
    sign = fast_tenant.sign
    body = data.draw(st.sampled_from([b"", b"{}", b"\x00"]), label="body")
    signer = functools.partial(sign, method="GET", path="/config")
    headers = data.draw(header_sets(signer, body), label="headers")
    if data.draw(st.booleans()):
        headers["If-None-Match"] = data.draw(
            st.one_of(header_text, st.sampled_from(["*", 'W/"x"', '"a", "b"', ","]))
        )
    extra = {}
    if body:
        extra["content_type"] = data.draw(content_types)
    response = client.generic("GET", "/config", body, **extra, **django_headers(headers))
    doc = _assert_well_formed(response)
    event(f"{response.status_code} {doc.get('error', {}).get('code', '') if doc else ''}")
    if response.status_code == 200:
        assert "syncEnabled" in doc
