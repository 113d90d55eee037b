"""parse_body's msgspec fast path answers exactly as the exact path, or leaves the body to it."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import validation
from ingest.validation import parse_body

DIFF = settings(
    max_examples=400,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Pairs(list):
    """A JSON object written key by key, so a body can repeat a key."""


class Num(str):
    """A number literal written as it is (floats, 1e999, long integers, -0)."""


def dump(value, ascii_only: bool = True) -> str:
    """JSON text; not ascii_only: non-ASCII written raw (a lone surrogate as invalid UTF-8)."""
    if isinstance(value, Pairs):
        members = (f"{dump(k, ascii_only)}:{dump(v, ascii_only)}" for k, v in value)
        return "{" + ",".join(members) + "}"
    if isinstance(value, dict):
        return dump(Pairs(value.items()), ascii_only)
    if isinstance(value, list):
        return "[" + ",".join(dump(v, ascii_only) for v in value) + "]"
    if isinstance(value, Num):
        return str(value)
    return json.dumps(value, ensure_ascii=ascii_only)


def answer(fn, body: bytes):
    """What fn(body) gives, comparable: every item in full, or the error raised."""
    try:
        parsed = fn(body)
    except Exception as exc:  # the exception is the answer compared
        return ("error", type(exc), getattr(exc, "code", None), str(exc))
    items = []
    for item in parsed.items:
        event = item.event
        if event is not None:
            # Equal datetimes may differ in offset: compare the spelling too. The spelling the
            # write sends (occurred_iso) is the datetime's own.
            assert event.occurred_iso == event.occurred_at.isoformat()
            event = (event, event.occurred_at.isoformat(), event.occurred_at.tzinfo)
        items.append((item.idempotency_key, event, item.error, item.raw))
    return ("parsed", parsed.batch, items)


def check(body: bytes) -> None:
    """The fast path either declines or gives the exact answer; parse_body gives the exact one."""
    exact = answer(validation._exact_parse, body)
    fast = validation._fast_parse(body)
    if fast is not None:
        assert answer(lambda b: fast, body) == exact
        assert exact[0] == "parsed"
        assert all(item[2] is None for item in exact[2])
    assert answer(parse_body, body) == exact


# Values around every check of validate_event, valid and not.
KEYS = st.one_of(
    st.text(max_size=6).map(lambda s: f"k-{s}"),
    st.sampled_from(["", "k" * 255, "k" * 256, "\U0001f600" * 255, "a\x00b", "\ud800", "é", 7]),
)
TYPES = st.one_of(
    st.from_regex(r"[a-z0-9_.:-]{1,12}", fullmatch=True),
    st.sampled_from(["", "x" * 100, "x" * 101, "Bad", "a b", "ok\n", "é", None, 1]),
)
TIMES = st.one_of(
    st.from_regex(
        r"(19|20|00|99)\d\d-(0[0-9]|1[0-3])-(0[0-9]|[1-3][0-9])[Tt ]([01][0-9]|2[0-5]):[0-6][0-9]"
        r":[0-6][0-9](\.\d{1,10})?([Zz]|[+-](0[0-9]|1[0-9]|2[0-5]):[0-6][0-9])",
        fullmatch=True,
    ),
    st.sampled_from(
        [
            "2026-12-01T10:00:00Z",
            "2026-12-01T10:00:00z",
            "2026-12-01t10:00:00Z",
            "2026-12-01 10:00:00Z",
            "2026-12-01T10:00:00",
            "2026-12-01T10:00:00+00:00",
            "2026-12-01T10:00:00.123456789-23:59",
            "2026-12-01T23:59:60Z",
            "2026-02-30T10:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-W48-1T10:00:00Z",
            "٢٠٢٦-12-01T10:00:00Z",
            "2026-12-01T10:00:00Z\n",
            "",
            None,
            20261201,
        ]
    ),
)
SOURCES = st.one_of(
    st.text(max_size=5),
    st.sampled_from(["bench", "s" * 64, "s" * 65, "", 'a"b\\', "café", "a\nb", "a\x00", None, 1]),
)
SUBJECTS = st.one_of(st.none(), KEYS, st.sampled_from(['q"\\\n\x01\u2028', True]))
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.from_regex(
        r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
    ).map(Num),
    st.sampled_from(["-0", "-0.0", "1e999", "-1e999", "1e-400", "1E5", "1" + "0" * 5000]).map(Num),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    st.text(max_size=8),
    st.sampled_from(["\x00", "a\ud800", "\udfff", '"\\/\b\f\n\r\t', "\U0001f600"]),
)
NAMES = st.one_of(st.text(max_size=4), st.sampled_from(["\x00", "a\x00", "\ud800", "é"]))
PAYLOADS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(NAMES, inner), max_size=4).map(Pairs),
    ),
    max_leaves=12,
)


# Values validate_event accepts, in their variety (escapes, offsets, floats, long integers).
GOOD_TEXT = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12)
GOOD_PAYLOADS = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        NUMBERS.filter(lambda n: not isinstance(n, Num) or math.isfinite(float(n))),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(st.text(max_size=4), inner), max_size=4).map(Pairs),
    ),
    max_leaves=12,
)
GOOD = {
    "idempotency_key": st.one_of(GOOD_TEXT, st.sampled_from(['q"\\\n\x01\u2028', "k" * 255])),
    "type": st.from_regex(r"[a-z0-9_.:-]{1,100}", fullmatch=True),
    "occurred_at": st.one_of(
        st.builds(
            lambda d, minutes, spec: d.replace(
                tzinfo=timezone(timedelta(minutes=minutes))
            ).isoformat(timespec=spec),
            st.datetimes(min_value=datetime(1000, 1, 1)),
            st.integers(-1439, 1439),
            st.sampled_from(["seconds", "milliseconds", "microseconds"]),
        ),
        st.builds(
            lambda d, fraction: f"{d:%Y-%m-%dT%H:%M:%S}{fraction(d)}Z",
            st.datetimes(min_value=datetime(1000, 1, 1)),
            st.sampled_from(
                [
                    lambda d: "",
                    lambda d: f".{d.microsecond // 1000:03d}",
                    lambda d: f".{d.microsecond:06d}",
                    lambda d: ".000",
                    lambda d: ".000000",
                ]
            ),
        ),
        TIMES,
    ),
    "source": st.one_of(GOOD_TEXT, st.sampled_from(['a"b\\', "s" * 64])),
    "payload": st.lists(st.tuples(st.text(max_size=4), GOOD_PAYLOADS), max_size=4).map(Pairs),
    "subject_id": st.one_of(st.none(), GOOD_TEXT, st.sampled_from(['q"\\\n\x01\u2028'])),
}


@st.composite
def events(draw, mostly_valid: bool = False):
    """An event object; fields may be missing, null, repeated, unknown, or of any value."""
    fields = [
        ("idempotency_key", KEYS),
        ("type", TYPES),
        ("occurred_at", TIMES),
        ("source", SOURCES),
        ("payload", st.one_of(PAYLOADS.map(lambda p: Pairs([("p", p)])), PAYLOADS)),
        ("subject_id", SUBJECTS),
    ]
    # Chances from a seeded Random: hypothesis would favour the boundaries (every field absent).
    rng = random.Random(draw(st.integers(0, 2**32)))
    pairs = Pairs()
    for name, values in fields:
        how = rng.randrange(20)
        if how == 0 and name not in ("idempotency_key", "type", "occurred_at"):
            continue  # absent
        if mostly_valid and how < 19:
            values = GOOD[name]
        if how == 1:
            pairs.append((name, draw(values)))  # repeated: the last one counts
        pairs.append((name, draw(values) if how < 14 or mostly_valid else valid_value(name)))
    if rng.random() < 0.03:
        pairs.append((draw(st.sampled_from(["extra", "events", "Type", "payload "])), 1))
    rng.shuffle(pairs)
    return pairs


def valid_value(name: str):
    return {
        "idempotency_key": "k-1",
        "type": "sale.completed",
        "occurred_at": "2026-12-01T10:00:00Z",
        "source": "bench",
        "payload": {"amount": "12.50", "items": 3},
        "subject_id": "customer-1",
    }[name]


@given(
    st.booleans().flatmap(lambda valid: st.lists(events(valid), min_size=1, max_size=4)),
    st.integers(0, 9),
    st.booleans(),
)
@DIFF
def test_random_bodies_get_the_exact_answer(evs, shape, ascii_only):
    if shape == 0:
        doc = evs[0]  # a single event
    elif shape == 1:
        doc = Pairs([("events", evs), ("events", evs[:1])])  # a repeated batch key
    elif shape == 2:
        doc = Pairs([("events", evs), ("other", 1)])
    else:
        doc = {"events": evs}
    check(dump(doc, ascii_only).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=40), st.integers(0, 400), st.integers(0, 3))
@DIFF
def test_mutated_bodies_get_the_exact_answer(noise, at, how):
    body = json.dumps(
        {"events": [{**{k: valid_value(k) for k in ("idempotency_key", "type", "occurred_at")}}]}
    ).encode()
    at %= len(body) + 1
    if how == 0:
        body = body[:at] + noise + body[at:]
    elif how == 1:
        body = body[:at] + noise + body[at + len(noise) :]
    elif how == 2:
        body = body[:at] + body[at + len(noise) :]
    else:
        body = noise
    check(body)


def test_float_literals_read_as_the_exact_path_reads_them():
    # The exact path reads floats with orjson, the fast path with float(): the same doubles.
    rng = random.Random(20261207)
    literals = [repr(rng.uniform(-1e6, 1e6)) for _ in range(300)]
    literals += [f"{rng.randrange(10**17)}.{rng.randrange(10**17)}e{rng.randrange(-330, 310)}"]
    literals += [f"{rng.random():.{rng.randrange(1, 18)}g}" for _ in range(300)]
    literals += [repr(rng.getrandbits(64) / 2 ** rng.randrange(1, 1100)) for _ in range(300)]
    for chunk in range(0, len(literals), 50):
        payload = "{" + ",".join(f'"f{i}":{n}' for i, n in enumerate(literals[chunk : chunk + 50]))
        body = (
            '{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z",'
            f'"payload":{payload}}}}}'
        )
        check(body.encode())


ADVERSARIAL = [
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"events":[{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}]}',
    b'\xef\xbb\xbf{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    '{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}'.encode("utf-16"),
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","source":null}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","subject_id":null}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":null}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":[]}',
    b'{"idempotency_key":"k\\u0000","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k\\\\u0000","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k\\ud800","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k\xed\xa0\x80","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k\xc0\x80","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":{"n":NaN}}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":{"n":1e999}}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":{"n":-0}}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z","payload":{"n":1,}}',
    b'{"idempotency_key":"k","type":true,"occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":1,"type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"} x',
    b' \t\r\n{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}\n',
    b'\x0c{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z"}',
    b'{"events":[]}',
    b'{"events":{}}',
    b'{"events":null}',
    b"[]",
    b"",
    b"null",
]


@pytest.mark.parametrize("body", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_bodies_get_the_exact_answer(body):
    check(body)


@pytest.mark.parametrize("depth", [62, 63, 64, 65, 66, 200, 300])
def test_deep_payloads_get_the_exact_answer(depth):
    for inner in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        body = (
            '{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z",'
            f'"payload":{{"d":{inner}}}}}'
        )
        check(body.encode())


@pytest.mark.parametrize("size", [-2, -1, 0, 1])
def test_payloads_at_the_size_limit_get_the_exact_answer(size):
    for filler in ("x", "é", "\\n"):
        n = (validation.MAX_PAYLOAD_BYTES - len('{"s":""}') + size) // len(filler.encode())
        body = (
            '{"idempotency_key":"k","type":"t","occurred_at":"2026-12-01T10:00:00Z",'
            f'"payload":{{"s":"{filler * n}"}}}}'
        )
        check(body.encode())


def test_batches_at_the_size_limits_get_the_exact_answer():
    event = {k: valid_value(k) for k in ("idempotency_key", "type", "occurred_at")}
    for n in (1, 2, 500, 501):
        check(json.dumps({"events": [event] * n}).encode())


def test_the_common_batch_takes_the_fast_path():
    event = {k: valid_value(k) for k in ("idempotency_key", "type", "occurred_at", "payload")}
    body = json.dumps({"events": [dict(event, idempotency_key=f"k-{i}") for i in range(100)]})
    assert validation._fast_parse(body.encode()) is not None


# validate_event's shortcuts, which both paths share: each against what it stands for.


@given(st.one_of(TIMES, GOOD["occurred_at"], st.text(max_size=30)).filter(lambda v: type(v) is str))
@DIFF
def test_occurred_at_reads_as_parse_occurred_at(value):
    try:
        expected = validation.parse_occurred_at(value)
    except validation.EventInvalid:
        assert validation._occurred_at(value) is None
        return
    parsed, iso = validation._occurred_at(value)
    assert (parsed, parsed.tzinfo, iso) == (expected, expected.tzinfo, expected.isoformat())


@given(st.lists(st.tuples(NAMES, PAYLOADS), max_size=4).map(dict))
@DIFF
def test_a_plain_payload_is_one_the_walk_passes(payload):
    if validation._plain(payload, 1):
        assert validation._check_payload_strings(payload) is True


@pytest.mark.parametrize("depth", [63, 64, 65, 66])
@pytest.mark.parametrize("lists", [False, True])
def test_a_plain_payload_is_within_the_depth(depth, lists):
    payload = {"d": "x"}  # `depth` objects and arrays, the payload object itself included
    for level in range(depth - 1):
        payload = [payload] if lists and level % 2 else {"d": payload}
    if isinstance(payload, list):
        payload = {"d": payload[0]}
    plain = validation._plain(payload, 1)
    try:
        assert validation._check_payload_strings(payload) is plain
    except validation.EventInvalid:
        assert not plain


# One bad field in an otherwise valid event, for every check validate_event makes.
BAD_FIELDS = (
    [("idempotency_key", v) for v in ["", "k" * 256, "a\x00", "\ud800", 7, None, ["k"]]]
    + [
        ("type", v)
        for v in ["", "x" * 101, "Bad", "a b", "é", "ok\n", "ok\t", "t\x00", None, 1, True]
    ]
    + [
        ("occurred_at", v)
        for v in [
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2026-02-30T10:00:00.000Z",
            "2026-12-01T24:00:00.000000Z",
            "2026-12-01T10:00:60Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-12-01T10:00:00+24:00",
            "٢٠٢٦-12-01T10:00:00Z",
            "2026-12-01T10:00:00Z ",
            "2026-12-01T10:00:00+02:00:00",
            "2026-12-01T10:00:00.5+02:00:30.5",
            None,
            0,
        ]
    ]
    + [
        ("source", v)
        for v in ["", "s" * 65, "a\nb", "a\x7f", "a\u2028", "\u00ad", "a\x00", "\udfff", None, 1]
    ]
    + [("subject_id", v) for v in ["", "s" * 256, "a\x00", "\ud800", 1, False]]
    + [
        ("payload", v)
        for v in [None, [], "x", 1, {"x": "a\x00"}, {"a\x00": 1}, {"x": "\ud800"}, {"f": 1e309}]
    ]
)


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=range(len(BAD_FIELDS)))
def test_one_bad_field_gets_the_exact_answer(field, value):
    event = {name: valid_value(name) for name in GOOD}
    event[field] = value
    for doc in (event, {"events": [valid_value_event(i) for i in range(2)] + [event]}):
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        check(body)
        check(json.dumps(doc).encode())
        assert validation._fast_parse(json.dumps(doc).encode()) is None


def valid_value_event(i: int) -> dict:
    return {name: valid_value(name) for name in GOOD} | {"idempotency_key": f"k-{i}"}
