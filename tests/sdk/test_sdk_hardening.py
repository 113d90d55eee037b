"""SDK hardening: which 4xx bisect, leases across clock steps, requeue, no secret in a repr."""

from __future__ import annotations

import time

import pytest

from codex_sdk.credentials import Credentials
from codex_sdk.store import Store


@pytest.mark.parametrize(
    ("status", "code"), [(400, "bad_request"), (400, "http_400"), (413, "http_413")]
)
def test_a_4xx_that_does_not_blame_the_content_keeps_every_event(
    standin, make_client, status, code
) -> None:
    # A proxy's 400/413 page or Django's host-header 400: not our content error codes.
    client = make_client()
    keys = [client.track("t", {"i": i}) for i in range(4)]
    standin.fail_posts(status, code, times=1)
    result = client.flush(timeout=10)
    assert result.outcome == "failed"
    assert result.dead_lettered == 0
    assert client.dead_letters() == []
    assert client.status().queue_depth == 4
    assert len(standin.posts()) == 1  # not bisected
    assert client.flush(timeout=10).statuses == dict.fromkeys(keys, "accepted")


def test_a_lease_taken_before_the_clock_stepped_back_does_not_strand_the_rows(
    tmp_path, monkeypatch
) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.enqueue("k1", '{"idempotency_key": "k1"}')
    [claimed] = store.claim("a", max_events=10, max_bytes=10_000, lease_sec=30)
    assert store.claim("b", max_events=10, max_bytes=10_000, lease_sec=30) == []  # leased
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # the clock steps back an hour
    again = store.claim("b", max_events=10, max_bytes=10_000, lease_sec=30)
    assert [e.idempotency_key for e in again] == [claimed.idempotency_key]
    store.close()


def test_requeue_never_deletes_a_dead_letter_it_did_not_move(tmp_path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.enqueue("k1", '{"idempotency_key": "k1"}')
    store.complete([], [("k1", "rejected", "invalid_event", "bad")])
    assert store.dead_letter_count() == 1
    store.enqueue("k1", '{"idempotency_key": "k1", "fixed": true}')  # queued again meanwhile
    assert store.requeue_dead_letters() == 0  # nothing moved ...
    assert store.dead_letter_count() == 1  # ... so nothing deleted
    store.close()


def test_credentials_repr_shows_no_secret() -> None:
    creds = Credentials(base_url="http://x", key_id="ck_1", secret="whsec_c2VjcmV0c2VjcmV0")
    assert "whsec_" not in repr(creds)
    assert "c2VjcmV0" not in repr(creds)
    assert "ck_1" in repr(creds)
