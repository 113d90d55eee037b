"""track(..., subject_id=...): sent when given, validated like the server, absent otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_sdk import Client
from codex_sdk.events import build_event


def test_build_event_carries_the_subject_only_when_given() -> None:
    with_subject = build_event("sale.completed", {}, idempotency_key="k1", subject_id="cus_42")
    assert with_subject["subject_id"] == "cus_42"
    without = build_event("sale.completed", {}, idempotency_key="k2")
    assert "subject_id" not in without


@pytest.mark.parametrize("bad", ["", "x" * 256, "nul\x00byte", 42, ["cus_1"]])
def test_track_refuses_a_bad_subject_before_queueing(offline_client: Client, bad) -> None:
    with pytest.raises(ValueError, match="subject_id"):
        offline_client.track("sale.completed", {}, subject_id=bad)
    assert offline_client.status().queue_depth == 0


def test_track_queues_the_subject_on_the_wire(offline_client: Client, tmp_path: Path) -> None:
    key = offline_client.track("sale.completed", {"amount": "1.00"}, subject_id="x" * 255)
    assert offline_client.status().queue_depth == 1
    import sqlite3

    with sqlite3.connect(tmp_path / "q.sqlite3") as db:
        [(body,)] = db.execute("SELECT body FROM events").fetchall()
    event = json.loads(body)
    assert event["idempotency_key"] == key
    assert event["subject_id"] == "x" * 255
