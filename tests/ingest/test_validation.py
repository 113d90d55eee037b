"""The canonical JSON (fingerprints and stored payloads) is the same whichever encoder writes it."""

from __future__ import annotations

import json
import random

import pytest

from ingest.validation import canonical_json, loads, validate_event
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
