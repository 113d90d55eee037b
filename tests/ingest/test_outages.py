"""Dependency outages through a real gunicorn process: PostgreSQL down -> 503; Redis down -> 202."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from ingest import metrics, tasks
from ingest.models import EnrichedEvent, Event
from tenants.scope import tenant_scope
from tests.dbutil import database_url
from tests.helpers import encode, make_event, wait_until
from tests.netutil import black_hole, free_port
from tests.procs import gunicorn_server
from tests.signing import sign_headers

pytestmark = pytest.mark.slow


@contextmanager
def _gunicorn(**env_overrides: str):
    """The real app under gunicorn with some environment changed; yields its base URL."""
    with gunicorn_server(env_overrides) as (url, _proc):
        yield url


def _post(url: str, key_id: str, secret: str, doc) -> tuple[httpx.Response, float]:
    body = encode(doc)
    headers = sign_headers(key_id, secret, body) | {"Content-Type": "application/json"}
    started = time.monotonic()
    response = httpx.post(url + "/v1/events", content=body, headers=headers, timeout=30)
    return response, time.monotonic() - started


@pytest.mark.parametrize("kind", ["refused", "hung"])
def test_postgres_down_is_503_unavailable_with_retry_after_within_10s(kind):
    fake_key = "ck_" + "1" * 32 + "_deadbeef"
    secret = "whsec_" + "A" * 43 + "="
    with black_hole() as hole:
        port = hole if kind == "hung" else free_port()
        dead_url = f"postgresql://postgres@127.0.0.1:{port}/codex"
        with _gunicorn(DATABASE_URL=dead_url) as url:
            response, elapsed = _post(url, fake_key, secret, make_event())
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    assert elapsed < 10


def test_redis_down_accepts_the_event_and_the_sweeper_enriches_it_later(celery_worker, signed):
    tenant = signed.tenant
    key = signed.key
    with _gunicorn(
        DATABASE_URL=database_url(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    ) as url:
        response, elapsed = _post(url, key.key_id, key.secret, make_event("redis-outage"))

        # The drain wake-up is published after the answer, off the request thread: its failure
        # shows up in /metrics shortly after.
        def wake_up_failure_counted() -> str | None:
            text = httpx.get(url + "/metrics", timeout=5).text
            return text if "codex_ingest_enqueue_errors_total 1.0" in text else None

        metrics_text = wait_until(
            wake_up_failure_counted, message="the failed drain wake-up counted"
        )
    # Rate limit failed open, the wake-up failed, and the event is in the ledger all the same.
    assert response.status_code == 202, response.text
    assert elapsed < 5
    assert "codex_ratelimit_errors_total 1.0" in metrics_text
    event_id = response.json()["id"]
    with tenant_scope(tenant.id):
        event = Event.objects.get(id=event_id)
        assert event.enriched_at is None
        # Two minutes later (without waiting them out), Redis is back: the sweeper's turn.
        Event.objects.filter(id=event_id).update(received_at=timezone.now() - timedelta(minutes=3))
    before = metrics.SWEEP_ENQUEUED._value.get()
    assert tasks.sweep_unenriched.apply().get() == 1
    assert metrics.SWEEP_ENQUEUED._value.get() == before + 1

    def enriched():
        with tenant_scope(tenant.id):
            return EnrichedEvent.objects.filter(tenant=tenant, event_id=event_id).exists()

    wait_until(enriched, message="the recovered event to be enriched")


def test_a_held_table_lock_gives_503_within_10_s_and_the_service_recovers(transactional_db, signed):
    from tests.dbutil import owner_connect

    tenant = signed.tenant
    key = signed.key
    with _gunicorn(DATABASE_URL=database_url()) as url:
        assert _post(url, key.key_id, key.secret, make_event())[0].status_code == 202
        with owner_connect() as owner:
            owner.execute("LOCK TABLE ingest_event IN ACCESS EXCLUSIVE MODE")
            response, elapsed = _post(url, key.key_id, key.secret, make_event("while-locked"))
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "unavailable"
            assert response.headers["Retry-After"]
            assert elapsed < 10
            owner.rollback()  # the lock goes
        response, _ = _post(url, key.key_id, key.secret, make_event("while-locked"))
        assert response.status_code == 202  # recovered by itself; nothing was half-written
    with tenant_scope(tenant.id):
        assert Event.objects.filter(tenant=tenant, idempotency_key="while-locked").count() == 1
