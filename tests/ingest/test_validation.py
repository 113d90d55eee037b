"""The canonical JSON (fingerprints and stored payloads) is the same whichever encoder writes it."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from ingest.validation import EventInvalid, canonical_json, loads, validate_event
from tests.helpers import make_event


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.random()
    if depth > 3 or kind < 0.3:
        alphabet = [chr(c) for c in (*range(1, 0x80), 0xE9, 0x2028, 0x4E2D, 0x1F600)]
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 10)))
    if kind < 0.45:
        return rng.randrange(-(2**63), 2**63)
    if kind < 0.5:
        return rng.choice([True, False, None])
    if kind < 0.75:
        return {
            _random_value(rng, 9): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))
        }
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_payload_json_is_byte_identical_to_the_stdlib_canonical_form():
    rng = random.Random(20261202)
    for _ in range(3000):
        payload = {_random_value(rng, 9): _random_value(rng) for _ in range(rng.randrange(6))}
        event = validate_event(make_event(payload=payload))
        assert event.payload_json == canonical_json(payload)


@pytest.mark.parametrize(
    "payload",
    [{"f": 1e16}, {"f": 0.1}, {"big": 2**64}, {"neg": -(2**63) - 1}, {"n": [1.5, {"x": 2**70}]}],
)
def test_floats_and_huge_integers_keep_the_stdlib_spelling(payload):
    event = validate_event(make_event(payload=payload))
    assert event.payload_json == json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_loads_keeps_integers_beyond_64_bits_exact():
    assert loads(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert loads(b'{"n": 18446744073709551616}')["n"] == 2**64


def test_the_fingerprint_is_the_sha256_of_the_stdlib_canonical_content():
    # Quotes, backslashes and control characters in the string fields take the encoder's escapes.
    rng = random.Random(20261203)
    alphabet = ['"', "\\", "\n", "\x01", "\x1f", "\x7f", "\u2028", "a", "é", "/", " ", "\U0001f600"]
    for _ in range(2000):
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 8)))
        source = "".join(c for c in subject if c.isprintable()) or "s"
        raw = make_event(source=source, subject_id=subject, payload={"k": subject})
        event = validate_event(raw)
        content = {
            "occurred_at": event.occurred_at.isoformat(),
            "payload": {"k": subject},
            "source": source,
            "subject_id": subject,
            "type": raw["type"],
        }
        expected = hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
        assert event.fingerprint == expected


@pytest.mark.parametrize(
    "payload",
    [{"x": "\ud800"}, {"\udfff": 1}, {"f": 1.5, "x": "\ud800"}, {"n": [2**70, "a\udc00"]}],
    ids=["value", "key", "beside-a-float", "beside-a-bigint"],
)
def test_a_lone_surrogate_anywhere_in_the_payload_is_invalid(payload):
    # Both encoders' paths: orjson refuses it, the stdlib's text fails to encode as UTF-8.
    with pytest.raises(EventInvalid, match="payload: must be valid Unicode"):
        validate_event(make_event(payload=payload))
