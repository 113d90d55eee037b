"""Reconcile after an erasure: erased events are neither drift nor pending."""

from __future__ import annotations

from ingest.services.erasure import events_erase
from reconcile.services import drift_compute
from tests.factories import TenantFactory
from tests.helpers import noon
from tests.ingest.lifecycle_helpers import put_event


def test_erased_events_count_as_neither_drift_nor_pending(db, yesterday):
    tenant = TenantFactory()
    at = noon(yesterday)
    put_event(tenant, "s-enriched", at, subject="sam", enriched=True)
    put_event(tenant, "s-pending", at, subject="sam")
    put_event(tenant, "s-dead", at, subject="sam", dead_letter=True)
    put_event(tenant, "o-1", at, enriched=True)
    put_event(tenant, "o-2", at, enriched=True)
    [before] = drift_compute(day=yesterday, tenant_id=tenant.id).runs
    assert (before.accepted, before.enriched, before.dead_lettered) == (5, 3, 1)
    assert before.pending == 1

    events_erase(tenant_id=tenant.id, subject_id="sam", actor="test")
    [after] = drift_compute(day=yesterday, tenant_id=tenant.id).runs
    assert (after.accepted, after.enriched, after.dead_lettered) == (2, 2, 0)
    assert after.pending == 0
    assert after.drift == 0.0
