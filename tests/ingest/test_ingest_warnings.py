"""Ingestion warnings: refused input of authenticated tenants is recorded, bounded, pruned,
counted, shown in the admin, and recording never turns a refusal into an error."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from ingest import ingest_warnings, metrics
from ingest.models import IngestWarning
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import api_request, encode, make_event, staff_client
from tests.netutil import free_port

pytestmark = pytest.mark.django_db


def _warnings(tenant) -> list[IngestWarning]:
    with tenant_scope(tenant.id):
        return list(IngestWarning.objects.filter(tenant=tenant).order_by("id"))


def _count(tenant, code) -> float:
    return metrics.WARNINGS.labels(tenant=tenant.slug, code=code)._value.get()


def test_rejected_and_conflicting_batch_items_are_recorded_with_the_request_id(signed, post_signed):
    tenant = signed.tenant
    key = signed.key
    post_signed(make_event("taken"))
    before = _count(tenant, "invalid_event")
    bad = {"idempotency_key": "k-bad", "type": "BAD TYPE", "occurred_at": "2026-01-01T00:00:00Z"}
    conflict = make_event("taken", payload={"other": True})
    response = post_signed({"events": [make_event("fine"), bad, {"nope": 1}, conflict]})
    assert response.status_code == 200
    assert response.json()["rejected"] == 2
    rows = _warnings(tenant)
    assert [(w.code, w.idempotency_key) for w in rows] == [
        ("invalid_event", "k-bad"),
        ("invalid_event", ""),
        ("idempotency_key_reused", "taken"),
    ]
    assert {w.request_id for w in rows} == {response["X-Request-ID"]}
    assert {w.key_id for w in rows} == {key.key_id}
    assert rows[0].message.startswith("type:")
    assert json.loads(rows[0].item) == bad
    assert json.loads(rows[1].item) == {"nope": 1}
    assert json.loads(rows[2].item)["payload"] == {"other": True}
    assert _count(tenant, "invalid_event") == before + 2


def test_an_accepted_batch_and_a_single_accepted_event_record_nothing(signed, post_signed):
    tenant = signed.tenant
    assert post_signed({"events": [make_event(), make_event()]}).status_code == 200
    assert post_signed(make_event()).status_code == 202
    assert _warnings(tenant) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"idempotency_key": "x"}', "application/json", 400, "invalid_request"),
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 400, "invalid_request"),
        (encode(make_event()), "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_requests_of_an_authenticated_tenant_are_recorded_with_the_body(
    client, signed, body, content_type, status, code
):
    tenant = signed.tenant
    response = api_request(
        client, signed.key, "POST", "/v1/events", body, content_type=content_type
    )
    assert response.status_code == status
    [warning] = _warnings(tenant)
    assert warning.code == code
    assert warning.item == body.decode()
    assert warning.request_id == response["X-Request-ID"]


def test_a_single_event_conflict_is_recorded(signed, post_signed):
    tenant = signed.tenant
    post_signed(make_event("dup", payload={"a": 1}))
    assert post_signed(make_event("dup", payload={"a": 2})).status_code == 422
    [warning] = _warnings(tenant)
    assert warning.code == "idempotency_key_reused"


def test_unsigned_requests_record_nothing(client, signed):
    response = client.generic("POST", "/v1/events", b"{bad", content_type="application/json")
    assert response.status_code == 401
    with system_scope("test"):
        assert IngestWarning.objects.count() == 0


def test_items_are_truncated_to_8_kib_on_a_character_boundary(signed, post_signed):
    tenant = signed.tenant
    big = {"idempotency_key": "big", "type": "x", "payload": {"t": "é" * 20_000}}
    post_signed({"events": [big]})
    [warning] = _warnings(tenant)
    assert len(warning.item.encode("utf-8")) <= 8 * 1024
    assert len(warning.item.encode("utf-8")) > 8 * 1024 - 4
    assert warning.item.startswith('{"idempotency_key":"big"')


@override_settings(CODEX_INGEST_WARNINGS_PER_MINUTE=5)
def test_beyond_the_per_minute_budget_warnings_are_sampled_but_all_counted(signed, post_signed):
    tenant = signed.tenant
    before = _count(tenant, "invalid_event")
    response = post_signed({"events": [{"n": i} for i in range(300)]})
    assert response.json()["rejected"] == 300
    # 5 within the budget, then one in 100 of the other 295 (the 100th and the 200th).
    assert len(_warnings(tenant)) == 5 + 2
    assert _count(tenant, "invalid_event") == before + 300
    assert _dropped(tenant, "sampled") == 293


def _dropped(tenant, reason) -> float:
    return metrics.WARNINGS_DROPPED.labels(tenant=tenant.slug, reason=reason)._value.get()


@override_settings(CODEX_INGEST_WARNINGS_ROWS_PER_DAY=4)
def test_past_the_daily_row_cap_warnings_are_counted_and_dropped_not_stored(signed, post_signed):
    tenant = signed.tenant
    before = _count(tenant, "invalid_event")
    assert post_signed({"events": [{"n": i} for i in range(10)]}).json()["rejected"] == 10
    assert post_signed({"idempotency_key": "x"}).status_code == 400  # the answer still stands
    assert post_signed({"events": [{"n": 99}]}).status_code == 200
    stored = _warnings(tenant)
    assert [json.loads(w.item) for w in stored] == [{"n": i} for i in range(4)]
    assert _count(tenant, "invalid_event") == before + 11  # every one is still counted
    assert _dropped(tenant, "rows_cap") == 6 + 1 + 1
    assert _dropped(tenant, "sampled") == 0


@override_settings(CODEX_INGEST_WARNINGS_BYTES_PER_DAY=5000)
def test_past_the_daily_byte_cap_warnings_are_counted_and_dropped_not_stored(signed, post_signed):
    tenant = signed.tenant
    items = [{"n": i, "pad": "é" * 500} for i in range(10)]  # about 1 KiB each, stored
    assert post_signed({"events": items}).json()["rejected"] == 10
    stored = _warnings(tenant)
    size = sum(
        len(f"{w.code}{w.message}{w.idempotency_key}{w.item}{w.subject_id}".encode())
        for w in stored
    )
    assert 1 <= len(stored) < 10
    assert 5000 - 1100 < size <= 5000  # filled up to the cap, never past it
    assert _dropped(tenant, "bytes_cap") == 10 - len(stored)
    assert _count(tenant, "invalid_event") >= 10


def test_the_daily_caps_are_atomic_across_concurrent_writers(db):
    """Eight threads taking budget at once for one tenant never admit more than the cap."""
    tenant = TenantFactory()
    verdicts: list[int] = []
    lock = threading.Lock()

    def take():
        got = ingest_warnings._budget(str(tenant.id), [100] * 25)
        with lock:
            verdicts.extend(got)

    with override_settings(
        CODEX_INGEST_WARNINGS_PER_MINUTE=10_000, CODEX_INGEST_WARNINGS_ROWS_PER_DAY=60
    ):
        threads = [threading.Thread(target=take) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(verdicts) == 200
    assert verdicts.count(0) == 60  # exactly the cap, whatever the interleaving
    assert verdicts.count(2) == 140


@override_settings(CODEX_INGEST_WARNINGS_ROWS_PER_DAY=1)
def test_the_daily_caps_start_again_on_the_next_utc_day(db):
    tenant_id = str(TenantFactory().id)
    today = time.time()
    assert ingest_warnings._budget(tenant_id, [10, 10], now=today) == [0, 2]
    assert ingest_warnings._budget(tenant_id, [10], now=today + 86_400) == [0]


def test_warnings_stay_in_their_tenant(signed, post_signed, db):
    tenant = signed.tenant
    post_signed({"events": [{"n": 1}]})
    other = TenantFactory()
    with tenant_scope(other.id):
        assert IngestWarning.objects.count() == 0  # row-level security, not only the filter
    assert len(_warnings(tenant)) == 1


def test_redis_down_while_recording_keeps_the_answer_and_counts_the_error(signed, post_signed):
    tenant = signed.tenant
    dead = {
        **settings.CACHES["default"],
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
    }
    before = metrics.WARNING_RECORD_ERRORS.labels(stage="redis")._value.get()
    with override_settings(CACHES={"default": dead}):
        response = post_signed({"events": [make_event(), {"n": 1}]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert _warnings(tenant) == []
    assert metrics.WARNING_RECORD_ERRORS.labels(stage="redis")._value.get() == before + 1


def test_a_locked_warnings_table_keeps_the_400_and_counts_the_error(
    transactional_db, signed, post_signed
):
    from tests.dbutil import owner_connect

    before = metrics.WARNING_RECORD_ERRORS.labels(stage="database")._value.get()
    with owner_connect() as owner:
        owner.execute("LOCK TABLE ingest_ingestwarning IN ACCESS EXCLUSIVE MODE")
        response = post_signed({"idempotency_key": "x"})
        owner.rollback()
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert metrics.WARNING_RECORD_ERRORS.labels(stage="database")._value.get() == before + 1
    assert post_signed(make_event()).status_code == 202  # the connection is fine afterwards


def test_prune_deletes_warnings_older_than_7_days_only(signed, post_signed):
    tenant = signed.tenant
    post_signed({"events": [{"n": 1}, {"n": 2}]})
    old, new = _warnings(tenant)
    with tenant_scope(tenant.id):
        IngestWarning.objects.filter(id=old.id).update(
            created_at=timezone.now() - timedelta(days=7, minutes=1)
        )
    assert ingest_warnings.ingest_warnings_prune() == 1
    assert [w.id for w in _warnings(tenant)] == [new.id]
    entry = settings.CELERY_BEAT_SCHEDULE["ingest-warnings-prune"]
    assert entry["task"] == "ingest.tasks.warnings_prune"
    assert entry["options"]["expires"]


def test_admin_lists_warnings_per_tenant_with_filters_for_staff_who_may(signed, post_signed, db):
    tenant = signed.tenant
    post_signed({"events": [{"marker": "mine"}]})
    url = "/admin/ingest/ingestwarning/"
    viewer = staff_client("ingest.view_ingestwarning")
    page = viewer.get(url, {"tenant__id__exact": str(tenant.id), "code": "invalid_event"})
    assert page.status_code == 200
    assert "invalid_event" in page.content.decode()
    assert "By code" in page.content.decode() or "code" in page.content.decode()
    empty = viewer.get(url, {"tenant__id__exact": str(TenantFactory().id)})
    assert "0 ingestion warnings" in empty.content.decode()
    assert staff_client("ingest.view_deadletter").get(url).status_code == 403
