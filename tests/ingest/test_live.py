"""Real concurrent HTTP against a live server: the 50-way race, the flood (the load-test gate's
scripts: tests/ingest/test_loadtest_gate.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from ingest.models import Event
from tenants.scope import tenant_scope
from tests.helpers import encode, make_event
from tests.signing import sign_headers

# Accepted events enqueue enrichment; no worker runs here, so the tasks are dropped after.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("purge_enrichment_queue")]


async def _send_all(url: str, key, bodies: list[bytes], concurrency: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(body: bytes) -> httpx.Response:
            async with semaphore:
                headers = sign_headers(key.key_id, key.secret, body)
                headers["Content-Type"] = "application/json"
                return await client.post(url + "/v1/events", content=body, headers=headers)

        return await asyncio.gather(*(one(b) for b in bodies))


def _rows(tenant) -> list[Event]:
    with tenant_scope(tenant.id):
        return list(Event.objects.filter(tenant=tenant))


def test_50_identical_concurrent_requests_store_one_row_1_accepted_49_duplicates(
    wide_live_server, signed, settings
):
    settings.CODEX_INGEST_RATE_PER_SEC = 10_000  # this test is about the race, not the limit
    tenant = signed.tenant
    key = signed.key
    body = encode(make_event("race-1"))
    responses = asyncio.run(_send_all(wide_live_server.url, key, [body] * 50, concurrency=50))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {202: 1, 200: 49}, statuses
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    [row] = _rows(tenant)
    assert row.id == ids.pop()


def test_flood_of_1500_requests_gives_429s_no_5xx_and_every_202_is_stored(
    wide_live_server, signed, settings
):
    # A limit well below what this one-process test server serves even on a busy machine, so
    # the flood exceeds it every run (at the default 50/s a slow CI box might not).
    settings.CODEX_INGEST_RATE_PER_SEC = 20
    tenant = signed.tenant
    key = signed.key
    bodies = [encode(make_event(f"flood-{i}")) for i in range(1500)]
    responses = asyncio.run(_send_all(wide_live_server.url, key, bodies, concurrency=50))
    statuses = Counter(r.status_code for r in responses)
    odd = [r.text for r in responses if r.status_code not in (202, 429)][:3]
    assert set(statuses) <= {202, 429}, (statuses, odd)
    assert statuses[429] > 0
    assert statuses[202] > 0
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert "RateLimit" in limited.headers
    accepted = {
        json.loads(b)["idempotency_key"]
        for b, r in zip(bodies, responses, strict=True)
        if r.status_code == 202
    }
    stored = {row.idempotency_key for row in _rows(tenant)}
    assert stored == accepted
