"""Validation answers exactly as before its fast paths: fingerprints, payloads, errors.

tests/ingest/data/validation_corpus.json holds 600 events made with ingest/validation.py as it was
at 3bdca10 (before issue 21's fast paths), with the fingerprint, canonical payload, occurred_at and
source it computed, or the error message it gave: escapes, non-ASCII, floats, huge integers,
offsets, fractions, lower-case t and z, subjects, bad fields of every kind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingest.validation import EventInvalid, loads, validate_event

CORPUS = json.loads((Path(__file__).parent / "data" / "validation_corpus.json").read_text())
CASES = CORPUS["cases"]


def test_the_corpus_covers_both_answers():
    valid = [c for c in CASES if "error" not in c]
    assert len(valid) >= 200
    assert len(CASES) - len(valid) >= 200


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_each_event_gets_the_answer_it_got_before(case):
    raw = loads(case["body"].encode())
    if "error" in case:
        with pytest.raises(EventInvalid, match=f"^{re.escape(case['error'])}$"):
            validate_event(raw)
        return
    event = validate_event(raw)
    assert event.fingerprint == case["fingerprint"]
    assert event.payload_json == case["payload_json"]
    assert event.occurred_at.isoformat() == case["occurred_at"]
    assert event.source == case["source"]
