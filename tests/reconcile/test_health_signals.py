"""The Health card grades on dead letters (open, last hour's inflow) and ingestion warnings."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ingest import ingest_warnings
from ingest.models import DeadLetter
from reconcile import selectors, services
from reconcile.selectors import Grade
from reconcile.tenant_signals import DLQ_INFLOW_CRITICAL
from tenants.scope import tenant_scope
from tests.factories import TenantFactory
from tests.helpers import noon, staff_client


def test_open_dead_letters_make_the_grade_warning_and_the_card_links_the_dlq(db, ledger, yesterday):
    tenant = TenantFactory(slug="parked")
    ledger(tenant, 10, enriched=9, dead=1, received_at=noon(yesterday))
    services.drift_compute(day=yesterday, settle=timedelta(0))
    with tenant_scope(tenant.id):  # parked yesterday: open, but not in the last hour's inflow
        DeadLetter.objects.update(last_failed_at=timezone.now() - timedelta(hours=20))
    health = selectors.reconcile_health()
    assert health.grade is Grade.CRITICAL  # drift 10%, and:
    assert "open dead letters: parked 1" in health.reasons
    [signal] = health.signals
    assert (signal.slug, signal.open_dead_letters, signal.dlq_inflow_1h) == ("parked", 1, 0)
    page = staff_client(superuser=True).get("/admin/").content.decode()
    assert "1 open dead letter</a>" in page
    assert "0 dead-lettered in the last hour" in page
    assert f"/admin/ingest/deadletter/?tenant__id__exact={tenant.id}" in page
    assert f"/admin/reconcile/reconcilerun/?tenant__id__exact={tenant.id}" in page


def test_only_open_dead_letters_grade_warning_on_their_own(db, ledger, yesterday):
    tenant = TenantFactory(slug="solo")
    ledger(tenant, 1000, enriched=999, dead=1, received_at=noon(yesterday))  # drift 0.1%: OK
    services.drift_compute(day=yesterday, settle=timedelta(0))
    health = selectors.reconcile_health()
    assert health.grade is Grade.WARNING
    assert health.reasons == ["open dead letters: solo 1"]


def test_a_dlq_inflow_of_the_critical_size_in_the_last_hour_is_critical(db, ledger, yesterday):
    flood = TenantFactory(slug="flood")
    ledger(flood, DLQ_INFLOW_CRITICAL, dead=DLQ_INFLOW_CRITICAL, received_at=noon(yesterday))
    health = selectors.reconcile_health()
    assert health.grade is Grade.CRITICAL
    assert any(
        r.startswith(f"dead-letter inflow of {DLQ_INFLOW_CRITICAL}+ in the last hour: flood")
        for r in health.reasons
    )


def test_spiking_ingestion_warnings_are_named_in_the_tenants_health_line(db, settings):
    settings.CODEX_INGEST_WARNINGS_SPIKE_PER_HOUR = 3
    noisy, quiet = TenantFactory(slug="noisy"), TenantFactory(slug="quiet")
    for tenant, n in ((noisy, 4), (quiet, 2)):
        ingest_warnings.ingest_warnings_record(
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            key_id="ck_x",
            entries=[ingest_warnings.WarningEntry(code="invalid_event", message="m")] * n,
        )
    health = selectors.reconcile_health()
    assert "ingestion warnings spiking (last hour): noisy 4" in health.reasons
    page = staff_client(superuser=True).get("/admin/").content.decode()
    assert "4 ingestion warnings</a> in the last hour <strong>(spiking)</strong>" in page
    assert "2 ingestion warnings</a> in the last hour\n" in page or "quiet" in page
    assert f"/admin/ingest/ingestwarning/?tenant__id__exact={noisy.id}" in page
