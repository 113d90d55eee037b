"""Delivery against the stand-in server: signing, batching, failures, dead letters, retries."""

from __future__ import annotations

import threading

import pytest

from codex_sdk import __version__
from tests.helpers import wait_until


def test_flush_delivers_signed_requests(standin, make_client) -> None:
    client = make_client()
    keys = [client.track("door.opened", {"n": i}) for i in range(3)]
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert (result.accepted, result.duplicates, result.dead_lettered) == (3, 0, 0)
    assert result.statuses == dict.fromkeys(keys, "accepted")
    assert standin.delivered == keys  # queue order preserved
    # Every request passed v2 verification (a new webhook-id each) and carried our User-Agent.
    assert {r.status for r in standin.requests} == {200}
    assert {r.user_agent for r in standin.requests} == {f"codex-sdk/{__version__}"}
    assert len({r.webhook_id for r in standin.requests}) == len(standin.requests)
    st = client.status()
    assert (st.queue_depth, st.dead_letters, st.events_accepted) == (0, 0, 3)
    assert st.last_sync_outcome == "ok"
    assert st.config_source == "server"


def test_nothing_to_send_makes_no_request(standin, make_client) -> None:
    client = make_client()
    assert client.flush(timeout=5).outcome == "empty"
    assert standin.posts() == []


def test_server_down_then_up_delivers_exactly_once(standin, make_client) -> None:
    standin.stop()
    client = make_client()
    keys = [client.track("reading.taken", {"v": i}) for i in range(5)]
    client.start()
    wait_until(
        lambda: client.status().last_sync_outcome == "failed",
        timeout=10,
        interval=0.01,
        message="client.status().last_sync_outcome == 'failed'",
    )
    assert client.status().queue_depth == 5  # nothing dropped by the failures
    standin.start()  # same port
    assert standin.wait_for(lambda: len(standin.delivered) == 5)
    wait_until(
        lambda: client.status().queue_depth == 0,
        timeout=10,
        interval=0.01,
        message="client.status().queue_depth == 0",
    )
    assert sorted(standin.delivered) == sorted(keys)
    assert sum(len(r.events) for r in standin.posts()) == 5  # no event sent twice


def test_lost_response_is_resent_and_counted_as_delivered(standin, make_client) -> None:
    # The server commits the batch but the answer never arrives: the retry must not
    # create duplicates server-side, and the SDK must treat "duplicate" as delivered.
    standin.drop_responses = 1
    client = make_client()
    keys = [client.track("reading.taken", {"v": i}) for i in range(4)]
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert result.duplicates == 4
    assert standin.delivered == keys
    assert [r.status for r in standin.posts()] == [-1, 200]
    assert client.status().queue_depth == 0


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (503, "unavailable")])
def test_retry_after_is_honoured(standin, make_client, status: int, code: str) -> None:
    standin.fail_posts(status, code, retry_after=1)
    client = make_client()
    client.track("t", {})
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    first, second = standin.posts()
    assert first.status == status
    assert second.t - first.t >= 1.0


def test_retry_after_also_holds_back_the_next_flush(standin, make_client) -> None:
    standin.config["retryCap"] = 0
    standin.fail_posts(429, "rate_limited", retry_after=30)
    client = make_client()
    client.track("t", {})
    assert client.flush(timeout=5).outcome == "failed"
    # A flush that cannot wait 30 s gives up without touching the server.
    result = client.flush(timeout=0.5)
    assert result.outcome == "timeout"
    assert len(standin.posts()) == 1
    assert client.status().queue_depth == 1


def test_rejected_and_conflict_go_to_dead_letters(standin, make_client) -> None:
    standin.reject_types["bad.reading"] = ("schema_invalid", "payload.value is required")
    standin.stored["reused-key"] = '{"something": "else"}'
    client = make_client()
    good = client.track("good.reading", {"value": 1})
    bad = client.track("bad.reading", {})
    conflict = client.track("good.reading", {"value": 2}, idempotency_key="reused-key")
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert (result.accepted, result.dead_lettered) == (1, 2)
    assert result.statuses == {good: "accepted", bad: "rejected", conflict: "conflict"}
    letters = {d.idempotency_key: d for d in client.dead_letters()}
    assert letters[bad].status == "rejected"
    assert letters[bad].error_code == "schema_invalid"
    assert letters[bad].error_message == "payload.value is required"
    assert letters[bad].event["type"] == "bad.reading"
    assert letters[conflict].status == "conflict"
    assert letters[conflict].error_code == "idempotency_conflict"
    st = client.status()
    assert (st.queue_depth, st.dead_letters) == (0, 2)
    # Never retried.
    assert client.flush(timeout=5).outcome == "empty"
    assert len(standin.posts()) == 1


def test_retry_cap_respected_and_events_kept(standin, make_client) -> None:
    standin.config["retryCap"] = 2
    standin.fail_posts(500, "internal_error", times=10)
    client = make_client()
    client.track("t", {})
    result = client.flush(timeout=10)
    assert result.outcome == "failed"
    assert "3 attempts" in (result.error or "")
    assert len(standin.posts()) == 3  # 1 attempt + retryCap retries
    assert client.status().queue_depth == 1


def test_after_retry_cap_background_waits_for_next_interval(standin, make_client) -> None:
    standin.config.update(retryCap=1, minIntervalSec=3600)
    standin.fail_posts(503, "unavailable", times=10)
    client = make_client()
    client.track("t", {})
    client.start()
    wait_until(
        lambda: client.status().last_sync_outcome == "failed",
        timeout=10,
        interval=0.01,
        message="client.status().last_sync_outcome == 'failed'",
    )
    assert len(standin.posts()) == 2
    # The loop stays alive (config keeps being polled) but sends nothing more.
    polls = len(standin.config_gets())
    assert standin.wait_for(lambda: len(standin.config_gets()) >= polls + 5)
    assert len(standin.posts()) == 2
    assert client.status().queue_depth == 1
    standin.post_faults.clear()
    assert client.flush(timeout=10).outcome == "ok"  # explicit flush ignores the interval


def test_batches_hold_at_most_500_events(standin, make_client) -> None:
    client = make_client()
    keys = [client.track("tick", {"i": i}) for i in range(1201)]
    result = client.flush(timeout=30)
    assert result.outcome == "ok"
    assert result.accepted == 1201
    assert [len(r.events) for r in standin.posts()] == [500, 500, 201]
    assert standin.delivered == keys


def test_batches_stay_under_one_mebibyte(standin, make_client) -> None:
    client = make_client()
    blob = "x" * (60 * 1024)
    for i in range(40):
        client.track("blob", {"i": i, "data": blob})
    result = client.flush(timeout=30)
    assert result.outcome == "ok"
    assert result.accepted == 40
    posts = standin.posts()
    assert len(posts) >= 3
    assert max(r.size for r in posts) <= 1024 * 1024
    assert {r.status for r in posts} == {200}


def test_poison_batch_is_bisected_and_only_the_culprit_dead_lettered(standin, make_client) -> None:
    # A request-level 400 blames the whole batch; the SDK splits it to find the culprit.
    client = make_client()
    keys = [client.track("t", {"i": i}) for i in range(4)]
    # Refuse the batch of 4, then its first half (2), then the first of those (1).
    standin.fail_posts(400, "invalid_request", times=3)
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert result.dead_lettered == 1
    assert client.dead_letters()[0].idempotency_key == keys[0]
    assert client.dead_letters()[0].error_code == "invalid_request"
    assert sorted(standin.delivered) == sorted(keys[1:])


def test_auth_failure_keeps_events_and_does_not_retry(standin, make_client) -> None:
    client = make_client()
    client.track("t", {})
    standin.keys.clear()  # key revoked / unknown
    result = client.flush(timeout=10)
    assert result.outcome == "failed"
    assert "unknown_key" in (result.error or "")
    assert len(standin.posts()) == 1
    assert client.status().queue_depth == 1


def test_device_clock_skew_is_corrected_from_server_date(standin, make_client) -> None:
    standin.clock_skew = 900.0  # device clock 15 minutes behind the server
    client = make_client()
    client.track("t", {})
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert standin.requests[0].status == 401  # first (config) request taught the offset
    assert all(r.status == 200 for r in standin.posts())


def test_dead_letters_can_be_requeued_after_a_server_fix(standin, make_client) -> None:
    standin.reject_types["new.kind"] = ("unknown_type", "type not enabled for tenant")
    client = make_client()
    key = client.track("new.kind", {})
    assert client.flush(timeout=5).dead_lettered == 1
    standin.reject_types.clear()  # operator enables the type server-side
    assert client.requeue_dead_letters() == 1
    assert client.status().dead_letters == 0
    assert client.flush(timeout=5).statuses == {key: "accepted"}


def test_a_pass_sends_only_what_was_queued_when_it_began(standin, make_client) -> None:
    standin.hold = threading.Event()
    client = make_client(max_batch_events=1)
    first = [client.track("t", {"i": i}) for i in range(2)]
    results = []
    flusher = threading.Thread(target=lambda: results.append(client.flush(timeout=10)))
    flusher.start()
    assert standin.wait_for(lambda: standin.posts_arrived == 1)
    late = client.track("t", {"i": "late"})  # arrives while the pass is under way
    standin.hold.set()
    flusher.join(10)
    assert results[0].accepted == 2
    assert standin.delivered == first
    assert client.status().queue_depth == 1
    assert client.flush(timeout=5).statuses == {late: "accepted"}
