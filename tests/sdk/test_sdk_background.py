"""Background sync: server config (pause/resume, interval, ETag), lifecycle and logging."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest

from codex_sdk import RemoteConfig
from codex_sdk.store import Store
from tests.helpers import wait_until


@pytest.fixture
def sdk_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="codex_sdk")
    return caplog


def test_sync_disabled_stops_posts_but_not_config_polls(standin, make_client, sdk_logs) -> None:
    standin.config["syncEnabled"] = False
    client = make_client()
    client.start()
    keys = [client.track("t", {"i": i}) for i in range(3)]
    assert standin.wait_for(lambda: len(standin.config_gets()) >= 6)
    assert standin.posts() == []
    st = client.status()
    assert (st.paused, st.running, st.queue_depth, st.next_sync_in) == (True, True, 3, None)
    # Polls are conditional: unchanged config costs a 304.
    later = standin.config_gets()[1:]
    assert all(r.if_none_match == standin.config_etag() for r in later)
    assert {r.status for r in later} == {304}
    # An explicit flush honours the pause too.
    assert client.flush(timeout=2).outcome == "disabled"
    assert standin.posts() == []

    standin.config["syncEnabled"] = True  # flipped in the admin: resumes without a restart
    assert standin.wait_for(lambda: len(standin.delivered) == 3)
    assert standin.delivered == keys
    assert "sync paused by server config" in sdk_logs.text
    assert "sync resumed by server config" in sdk_logs.text


def test_flush_force_sends_while_disabled(standin, make_client) -> None:
    standin.config["syncEnabled"] = False
    client = make_client()
    key = client.track("t", {})
    result = client.flush(timeout=5, force=True)
    assert result.outcome == "ok"
    assert standin.delivered == [key]


def test_disabling_mid_run_pauses_the_next_sync(standin, make_client) -> None:
    client = make_client()
    client.start()
    client.track("t", {"n": 1})
    assert standin.wait_for(lambda: len(standin.delivered) == 1)
    standin.config["syncEnabled"] = False
    wait_until(
        lambda: client.status().paused, timeout=10, interval=0.01, message="client.status().paused"
    )
    client.track("t", {"n": 2})
    polls = len(standin.config_gets())
    assert standin.wait_for(lambda: len(standin.config_gets()) >= polls + 5)
    assert len(standin.posts()) == 1


def test_min_interval_between_syncs_and_live_interval_change(standin, make_client) -> None:
    standin.config["minIntervalSec"] = 3600
    client = make_client()
    client.start()
    first = client.track("t", {"n": 1})  # first sync is due at once: sent promptly
    assert standin.wait_for(lambda: standin.delivered == [first])
    # Let that sync pass finish, or it would (rightly) pick up the next event as well.
    wait_until(
        lambda: client.status().sync_passes == 1,
        timeout=10,
        interval=0.01,
        message="client.status().sync_passes == 1",
    )
    second = client.track("t", {"n": 2})
    polls = len(standin.config_gets())
    assert standin.wait_for(lambda: len(standin.config_gets()) >= polls + 5)
    assert len(standin.posts()) == 1  # the interval has not elapsed
    assert client.status().next_sync_in > 3000
    standin.config["minIntervalSec"] = 0  # takes effect at the next config poll
    assert standin.wait_for(lambda: standin.delivered == [first, second])


def test_config_refresh_follows_max_age_and_etag(standin, make_client) -> None:
    standin.max_age = 1
    client = make_client(config_refresh_sec=None)
    client.start()
    assert standin.wait_for(lambda: len(standin.config_gets()) >= 2, timeout=5)
    first, second = standin.config_gets()[:2]
    assert first.status == 200
    assert first.if_none_match is None
    assert second.status == 304
    assert second.if_none_match == standin.config_etag()
    assert second.t - first.t >= 0.9  # cached for max-age=1
    wait_until(
        lambda: client.status().config_source == "server-cached",
        timeout=10,
        interval=0.01,
        message="client.status().config_source == 'server-cached'",
    )


def test_config_falls_back_to_persisted_then_defaults(standin, make_client, tmp_path) -> None:
    standin.config.update(syncEnabled=False, minIntervalSec=42, retryCap=1)
    client = make_client()
    assert client.refresh_config() == RemoteConfig(False, 42.0, 1)
    client.close(flush=False)
    standin.stop()

    again = make_client()  # same queue file, server unreachable
    st = again.status()
    assert st.config == RemoteConfig(False, 42.0, 1)
    assert st.config_source == "persisted"
    again.refresh_config()
    assert again.status().config_error is not None
    assert again.flush(timeout=2).outcome == "disabled"

    fresh = make_client(queue_path=tmp_path / "other.sqlite3")
    fresh.refresh_config()
    assert fresh.status().config == RemoteConfig(True, 900.0, 3)
    assert fresh.status().config_source == "default"


def test_config_outage_at_start_then_recovery(standin, make_client) -> None:
    standin.fail_config(503, "unavailable", times=2)
    client = make_client()
    client.start()
    key = client.track("t", {})
    assert standin.wait_for(lambda: standin.delivered == [key])  # defaults allow sync
    assert standin.wait_for(lambda: any(r.status == 200 for r in standin.config_gets()))


def test_close_is_prompt_when_idle(standin, make_client) -> None:
    standin.config["minIntervalSec"] = 900
    client = make_client(config_refresh_sec=None)  # max-age 30: the thread sleeps long
    client.start()
    wait_until(
        lambda: client.status().config_source == "server",
        timeout=10,
        interval=0.01,
        message="client.status().config_source == 'server'",
    )
    started = time.monotonic()
    client.close(timeout=5)
    assert time.monotonic() - started < 0.5
    assert not client.running


def test_close_flushes_pending_events(standin, make_client) -> None:
    client = make_client()
    keys = [client.track("t", {"i": i}) for i in range(2)]
    client.close()
    assert standin.delivered == keys


def test_close_is_bounded_when_server_is_down(standin, make_client, queue_path) -> None:
    standin.stop()
    client = make_client(backoff_base=5.0, backoff_max=5.0)
    client.track("t", {})
    client.start()
    started = time.monotonic()
    client.close(timeout=1)
    assert time.monotonic() - started < 1.5
    store = Store(queue_path)
    assert store.depth() == 1  # kept for the next run
    assert store.in_flight() == 0  # no lease left behind
    store.close()


def test_concurrent_track_while_syncing_delivers_each_once(standin, make_client) -> None:
    client = make_client()
    client.start()
    keys: list[str] = []
    lock = threading.Lock()

    def produce() -> None:
        for i in range(100):
            key = client.track("t", {"i": i})
            with lock:
                keys.append(key)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert standin.wait_for(lambda: len(standin.delivered) == 400)
    assert sorted(standin.delivered) == sorted(keys)
    sent = Counter(k for r in standin.posts() for k in r.events)
    assert max(sent.values()) == 1


def test_on_sync_callback_and_counters(standin, make_client) -> None:
    results = []

    def on_sync(result) -> None:
        results.append(result)
        raise RuntimeError("a broken callback must not break syncing")

    client = make_client(on_sync=on_sync)
    client.track("t", {})
    client.flush(timeout=5)
    client.track("t", {})
    client.flush(timeout=5)
    assert [r.accepted for r in results] == [1, 1]
    st = client.status()
    assert (st.events_accepted, st.post_requests, st.sync_passes) == (2, 2, 2)
    assert st.config_requests >= 1


def test_secret_never_logged(standin, make_client, secret, sdk_logs) -> None:
    standin.fail_posts(401, "invalid_signature")
    client = make_client()
    client.track("t", {})
    assert client.flush(timeout=5).outcome == "failed"
    assert client.flush(timeout=5).outcome == "ok"
    client.start()
    client.close()
    text = sdk_logs.text
    assert secret not in text
    assert secret.removeprefix("whsec_") not in text
    assert "v2," not in text  # no signatures either
    assert "v1," not in text
    assert secret not in repr(client)
