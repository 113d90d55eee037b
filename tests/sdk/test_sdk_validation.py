"""Obviously invalid input is refused at track() time, before it reaches the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from codex_sdk import Client
from codex_sdk.events import MAX_PAYLOAD_BYTES, build_event


@pytest.mark.parametrize(
    "bad_type", ["", "Upper", "has space", "x" * 101, "emoji☃", "a/b", "ok\n", None, 5]
)
def test_bad_types(offline_client: Client, bad_type: object) -> None:
    with pytest.raises(ValueError, match="type"):
        offline_client.track(bad_type, {})  # type: ignore[arg-type]
    assert offline_client.status().queue_depth == 0


@pytest.mark.parametrize(
    "payload",
    [[1, 2], "text", {"x": object()}, {"x": float("nan")}, {"big": "a" * MAX_PAYLOAD_BYTES}],
)
def test_bad_payloads(offline_client: Client, payload: object) -> None:
    with pytest.raises(ValueError, match="payload"):
        offline_client.track("ok.type", payload)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 256},
        {"source": ""},
        {"source": "s" * 65},
        {"occurred_at": datetime(2026, 1, 1)},  # naive
        {"occurred_at": "2026-01-01 10:00:00"},
        {"occurred_at": "2026-01-01T10:00:00"},  # no offset
        {"occurred_at": "2026-02-30T10:00:00Z"},
        {"occurred_at": 1234567890},
        {"occurred_at": "2026-01-01T10:00:00.1234567891Z"},  # the server takes <= 9 digits
    ],
)
def test_bad_fields(offline_client: Client, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"idempotency_key|source|occurred_at"):
        offline_client.track("ok.type", {}, **kwargs)


def test_valid_event_shape() -> None:
    tz = timezone(timedelta(hours=2))
    ev = build_event(
        "a.b:c-d_9", {"n": 1}, occurred_at=datetime(2026, 11, 26, 12, 0, tzinfo=tz), source="x"
    )
    assert ev["occurred_at"] == "2026-11-26T12:00:00.000+02:00"
    assert len(ev["idempotency_key"]) == 36
    assert build_event("t", None)["payload"] == {}
    assert build_event("t", occurred_at="2026-11-26T10:00:00Z")["occurred_at"].endswith("Z")
    now = datetime.fromisoformat(build_event("t")["occurred_at"])
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5
    # Exactly at the limit is fine (measured as json.dumps default output).
    filler = "a" * (MAX_PAYLOAD_BYTES - len('{"k": ""}'))
    build_event("t", {"k": filler})


def test_payload_is_copied_at_track_time(offline_client: Client) -> None:
    payload = {"n": 1}
    key = offline_client.track("t", payload)
    payload["n"] = 2
    assert build_event("t", payload)["payload"] == {"n": 2}
    assert offline_client.status().queue_depth == 1
    assert isinstance(key, str)


def test_same_key_twice(offline_client: Client) -> None:
    when = "2026-11-26T10:00:00Z"
    key = offline_client.track("t", {"a": 1}, idempotency_key="k1", occurred_at=when)
    assert key == "k1"
    # Identical re-track is a no-op; different content under the same key is refused.
    offline_client.track("t", {"a": 1}, idempotency_key="k1", occurred_at=when)
    assert offline_client.status().queue_depth == 1
    with pytest.raises(ValueError, match="different content"):
        offline_client.track("t", {"a": 2}, idempotency_key="k1", occurred_at=when)
