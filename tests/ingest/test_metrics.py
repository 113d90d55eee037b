"""The ingest metrics are exported on /metrics with the names the alerts use."""

from __future__ import annotations

import pytest

from ingest import metrics
from ingest.models import Event
from ingest.services.deadletters import deadletter_record
from ingest.services.enrich import events_enrich
from tenants.scope import tenant_scope
from tests.factories import EventFactory
from tests.helpers import make_event

pytestmark = pytest.mark.django_db

NAMES = [
    "codex_ingest_requests_total",
    "codex_ingest_events_total",
    "codex_ingest_request_duration_seconds_bucket",
    "codex_ingest_auth_failures_total",
    "codex_ratelimit_rejections_total",
    "codex_ratelimit_errors_total",
    "codex_enrich_events_total",
    "codex_dlq_events_total",
    "codex_dlq_unresolved_events",
]


def test_metrics_endpoint_exports_every_ingest_metric(client, post_signed, signed, settings):
    tenant = signed.tenant
    settings.CODEX_INGEST_RATE_PER_SEC = 1
    post_signed(make_event("m-1"))
    post_signed(make_event("m-2"))  # 429 unless a window edge passed
    client.post("/v1/events", data=b"{}", content_type="application/json")  # 401
    with tenant_scope(tenant.id):
        event = Event.objects.get(idempotency_key="m-1")
    deadletter_record(
        tenant_id=tenant.id, failures={event.id: ValueError("x")}, attempts=4, first_failed_at=None
    )
    text = client.get("/metrics").content.decode()
    for name in NAMES:
        assert name in text, name
    assert 'le="1.0"' in text
    assert 'le="0.005"' in text
    assert f'codex_dlq_unresolved_events{{tenant="{tenant.slug}"}} 1.0' in text
    assert (
        f'codex_ingest_events_total{{outcome="accepted",source="pos",tenant="{tenant.slug}"}}'
        in text
    )


def test_dlq_depth_gauge_is_multiprocess_safe_and_drops_on_resolve(signed):
    tenant = signed.tenant
    assert metrics.DLQ_DEPTH._multiprocess_mode == "mostrecent"
    event = EventFactory(tenant=tenant)
    deadletter_record(
        tenant_id=tenant.id, failures={event.id: ValueError("x")}, attempts=1, first_failed_at=None
    )
    assert metrics.DLQ_DEPTH.labels(tenant=tenant.slug)._value.get() == 1
    events_enrich(tenant_id=tenant.id, event_ids=[event.id])
    assert metrics.DLQ_DEPTH.labels(tenant=tenant.slug)._value.get() == 0


def test_source_label_values_are_capped_per_tenant():
    from ingest.metrics import MAX_SOURCES_PER_TENANT, OTHER_SOURCE, source_label

    tenant = "cap-test-tenant"
    labels = [source_label(tenant, f"src-{n}") for n in range(MAX_SOURCES_PER_TENANT + 5)]
    assert labels[:MAX_SOURCES_PER_TENANT] == [f"src-{n}" for n in range(MAX_SOURCES_PER_TENANT)]
    assert set(labels[MAX_SOURCES_PER_TENANT:]) == {OTHER_SOURCE}
    assert source_label(tenant, "src-0") == "src-0"  # a known source keeps its label
    assert source_label("another-tenant", "src-99") == "src-99"  # the cap is per tenant


def test_a_bug_escaping_the_view_is_still_counted_and_answers_json_500(
    client, post_signed, monkeypatch
):
    def broken(**_kwargs):
        raise RuntimeError("a bug in the write path")

    # Simulates a programming error below the view (the database itself stays real).
    monkeypatch.setattr("ingest.views.events_ingest", broken)
    client.raise_request_exception = False
    errors = metrics.REQUESTS.labels(outcome="error")._value.get()
    observed = sum(b.get() for b in metrics.REQUEST_DURATION._buckets)
    response = post_signed(make_event("bug-1"))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["error"]["rid"] == response["X-Request-ID"]
    assert metrics.REQUESTS.labels(outcome="error")._value.get() == errors + 1
    assert sum(b.get() for b in metrics.REQUEST_DURATION._buckets) == observed + 1


def test_the_source_cap_is_shared_by_processes_and_survives_a_restart():
    import uuid

    from ingest.metrics import (
        MAX_SOURCES_PER_TENANT,
        OTHER_SOURCE,
        source_label,
        source_labels_forget,
    )

    tenant = f"shared-{uuid.uuid4().hex[:8]}"
    for n in range(MAX_SOURCES_PER_TENANT):  # "process A" uses the tenant's first 20 sources
        assert source_label(tenant, f"a-{n}") == f"a-{n}"
    source_labels_forget()  # "process B", or A after a restart: nothing remembered locally
    assert source_label(tenant, "b-new") == OTHER_SOURCE  # the cap is global, not per process
    assert source_label(tenant, "a-3") == "a-3"  # a registered source keeps its label
