"""The SDK (codex_sdk) against a live server: outages, crashes, live flag flips, 429, rejects.

Every wait is on an observable condition with a deadline. A FlakyProxy in front of the live
server plays "server down", "server back" and "answer lost"; device crashes are real SIGKILLs of a
separate process running the SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from ingest.models import EnrichedEvent
from tenants.scope import tenant_scope
from tests.factories import SigningKeyFactory, TenantFactory
from tests.flags._proxy import FlakyProxy
from tests.helpers import SDK_INTERVAL as INTERVAL
from tests.helpers import set_flags, stored_keys, wait_until

DEVICE = Path(__file__).with_name("_sdk_device.py")
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"


@pytest.fixture
def device(transactional_db):
    """A tenant with a signing key, syncing every INTERVAL seconds."""
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    set_flags(tenant, minIntervalSec=INTERVAL)
    return tenant, key


@pytest.fixture
def proxy(live_server):
    parts = urlsplit(live_server.url)
    flaky = FlakyProxy(parts.hostname, parts.port)
    flaky.up()
    yield flaky
    flaky.down()


def test_events_tracked_while_the_server_is_down_arrive_exactly_once_after_it_returns(
    device, proxy, make_client, celery_worker
):
    tenant, key = device
    client = make_client(proxy.url, key, max_batch_events=10)
    assert client.refresh_config(force=True).min_interval_sec == INTERVAL

    proxy.down()
    client.start()
    tracked = [client.track("store.sale", {"n": i, "amount": 100 + i}) for i in range(25)]
    wait_until(
        lambda: client.status().last_sync_error,
        timeout=10,
        message="a failed sync while the server is down",
    )
    assert stored_keys(tenant) == []
    assert client.status().queue_depth == 25

    proxy.drop_next_responses = 1  # the first batch after the outage is stored, its answer lost
    proxy.up()
    wait_until(lambda: client.status().queue_depth == 0, timeout=30, message="the queue to drain")

    keys = stored_keys(tenant)
    assert sorted(keys) == sorted(tracked)  # all of them, each once
    assert any(e.dropped for e in proxy.exchanges("POST"))
    assert client.status().events_duplicate >= 1  # the lost answer's batch came back duplicate
    wait_until(
        lambda: _enriched_count(tenant) == 25,
        timeout=30,
        message="the worker to enrich every event exactly once",
    )


def _enriched_count(tenant) -> int:
    with tenant_scope(tenant.id):
        return EnrichedEvent.objects.filter(tenant_id=tenant.id).count()


def test_killing_the_sdk_process_with_queued_events_loses_and_duplicates_nothing(
    device, live_server, tmp_path
):
    tenant, key = device
    total = 120
    set_flags(tenant, ingestRatePerSec=2)  # slow delivery down so the kill lands mid-way
    queue = str(tmp_path / "device.sqlite3")
    args = [sys.executable, str(DEVICE)]
    creds = [live_server.url, key.key_id, key.secret, queue]
    producer = subprocess.Popen(
        [*args, "produce", *creds, str(total)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert producer.stdout.readline().strip() == "TRACKED"
        wait_until(
            lambda: stored_keys(tenant), timeout=20, message="the device to deliver its first batch"
        )
    finally:
        producer.kill()  # SIGKILL: no close(), no flush, leases left behind
        producer.wait(10)
    at_kill = len(stored_keys(tenant))
    assert 0 < at_kill < total, "the kill should land while events are still queued"

    set_flags(tenant, ingestRatePerSec=1000)
    drained = subprocess.run(
        [*args, "drain", *creds], capture_output=True, text=True, timeout=90, check=False
    )
    assert drained.stdout.strip().endswith("DRAINED"), drained.stdout + drained.stderr

    keys = stored_keys(tenant)
    assert len(keys) == total
    assert set(keys) == {f"kill-{i:04d}" for i in range(total)}


def test_flipping_sync_enabled_pauses_and_resumes_a_running_sdk_live(
    device, live_server, make_client
):
    tenant, key = device
    passes: list[tuple[float, int]] = []  # (started_at unix, requests) of passes that sent

    def on_sync(result):
        if result.requests:
            passes.append((result.started_at, result.requests))

    client = make_client(live_server.url, key, config_refresh_sec=1.0, on_sync=on_sync)
    client.start()
    producing = threading.Event()
    producing.set()

    def produce():
        while producing.is_set():
            client.track("device.heartbeat")
            time.sleep(0.25)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_until(lambda: len(passes) >= 2, timeout=2 * INTERVAL + 5, message="two regular syncs")

        flipped_off = time.time()
        set_flags(tenant, syncEnabled=False)
        wait_until(
            lambda: not client.status().config.sync_enabled,
            timeout=30,
            message="the SDK to see syncEnabled=false",
        )
        seen_off = time.time() - flipped_off
        # Nothing may start once the SDK knows; observe for longer than one interval.
        quiet_from = flipped_off + seen_off + 0.2
        time.sleep(INTERVAL + 2)  # an observation window, not a race: nothing may happen in it
        late = [p for p in passes if p[0] > quiet_from]
        assert late == [], f"sync passes started while paused: {late}"
        last_start = max(p[0] for p in passes)
        assert last_start <= flipped_off + 30 + INTERVAL
        queued_while_paused = client.status().queue_depth
        assert queued_while_paused > 0
        assert client.status().next_sync_in is None

        flipped_on = time.time()
        set_flags(tenant, syncEnabled=True)
        wait_until(
            lambda: any(p[0] >= flipped_on for p in passes),
            timeout=30 + INTERVAL + 5,
            message="a sync after syncEnabled=true",
        )
        resumed = min(p[0] for p in passes if p[0] >= flipped_on) - flipped_on
    finally:
        producing.clear()
        producer.join(5)
    wait_until(
        lambda: client.status().queue_depth == 0,
        timeout=2 * INTERVAL + 5,
        message="the backlog to drain",
    )
    assert len(stored_keys(tenant)) == len(set(stored_keys(tenant)))

    report = {
        "pause_seen_by_sdk_s": round(seen_off, 2),
        "last_sync_started_after_pause_flip_s": round(last_start - flipped_off, 2),
        "resume_first_sync_after_flip_s": round(resumed, 2),
        "config_refresh_sec": 1.0,
        "min_interval_sec": INTERVAL,
        "events_queued_while_paused": queued_while_paused,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sdk-flip-latency.json").write_text(json.dumps(report, indent=2))
    print("flip latency:", report)
    assert resumed <= 30 + INTERVAL


def test_429_retry_after_is_honoured_before_the_next_attempt(device, proxy, make_client):
    tenant, key = device
    set_flags(tenant, ingestRatePerSec=1)
    client = make_client(proxy.url, key, max_batch_events=1, backoff_base=0.01, backoff_max=0.02)
    tracked = [client.track("store.scan", {"n": i}) for i in range(4)]
    deadline = time.monotonic() + 40
    while client.status().queue_depth and time.monotonic() < deadline:
        client.flush(timeout=15)
    assert sorted(stored_keys(tenant)) == sorted(tracked)

    posts = proxy.exchanges("POST")
    limited = [(i, e) for i, e in enumerate(posts) if e.status == 429]
    assert limited, "expected the 1/s limit to answer 429 at least once"
    for i, answer in limited:
        assert answer.retry_after is not None
        if i + 1 < len(posts):
            gap = posts[i + 1].at - answer.at
            # Backoff alone would be <= 0.02 s: only Retry-After explains this wait.
            assert gap >= float(answer.retry_after) - 0.05, (gap, answer)


def test_an_event_the_server_rejects_goes_to_the_sdk_dead_letter_table(
    device, live_server, make_client
):
    tenant, key = device
    client = make_client(live_server.url, key)
    good = client.track("store.sale", {"amount": 5})
    bad = client.track("store.sale", {"note": "nul\x00byte"})  # PostgreSQL cannot store NUL
    result = client.flush(timeout=20)
    assert result.dead_lettered == 1
    assert stored_keys(tenant) == [good]
    letter = client.dead_letter(bad)
    assert letter is not None
    assert letter.status == "rejected"
    assert "NUL" in (letter.error_message or "")
    assert client.status().queue_depth == 0
    assert client.status().dead_letters == 1
    client.flush(timeout=5)
    assert stored_keys(tenant) == [good]  # not retried forever


def test_a_flip_reaches_an_sdk_on_default_config_caching_within_30_seconds(
    device, live_server, make_client
):
    """No refresh override: the SDK caches /config for the server's max-age (30 s)."""
    tenant, key = device
    client = make_client(live_server.url, key, config_refresh_sec=None)
    client.start()
    wait_until(
        lambda: client.status().config_source == "server",
        timeout=10,
        message="the first /config read",
    )
    flipped = time.monotonic()
    set_flags(tenant, syncEnabled=False)
    wait_until(
        lambda: not client.status().config.sync_enabled,
        timeout=40,
        message="the SDK to see syncEnabled=false",
    )
    seen = time.monotonic() - flipped
    assert seen <= 30 + 1.5, seen


def _batches(tenant, outcome) -> float:
    from prometheus_client import REGISTRY

    labels = {"tenant": tenant.slug, "outcome": outcome}
    return REGISTRY.get_sample_value("codex_sync_batches_total", labels) or 0.0


def test_sdk_batches_are_counted_by_tenant_and_outcome(device, live_server, make_client):
    tenant, key = device
    before = {o: _batches(tenant, o) for o in ("success", "rejected", "error")}
    client = make_client(live_server.url, key)
    client.track("store.sale", {"amount": 1})
    client.flush(timeout=10)
    assert _batches(tenant, "success") == before["success"] + 1
    client.track("store.sale", {"note": "nul\x00byte"})
    client.flush(timeout=10)
    assert _batches(tenant, "rejected") == before["rejected"] + 1
    assert _batches(tenant, "error") == before["error"]
