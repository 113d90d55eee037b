"""reconcile --source stripe: Stripe (a local stand-in, the real library) against the ledger."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from flags.services import flag_update
from ingest.models import EnrichedEvent, Event
from ingest.services.enrich import events_drain
from ingest.services.offboard import tenant_offboard
from reconcile.models import SourceReconcileRun
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tenants.services.sources import source_set_enabled
from tenants.services.tenants import tenant_suspend
from tests.factories import TenantFactory, WebhookSourceFactory
from tests.signing import django_headers
from tests.sources.webhook_signing import encode, stripe_charge_event, stripe_header_library

SECRET = "whsec_reconcile_test_secret"
API_KEY = "rk_test_standin_reader"


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def acme(db):
    tenant = TenantFactory(slug="acme")
    flag_update(
        tenant_id=tenant.id,
        values={"sourceRatePerSec": 10_000, "ingestRatePerSec": 10_000},
        actor="t",
        via="cli",
    )
    info = WebhookSourceFactory(
        tenant=tenant, kind="stripe", secret=SECRET, api_key=API_KEY, actor="t"
    )
    return tenant, info


def _day_events(day, n: int) -> list[dict]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return [stripe_charge_event(f"evt_day_{i:04d}", created=start + 60 + i * 300) for i in range(n)]


def _ledger_keys(tenant) -> set[str]:
    with tenant_scope(tenant.id):
        return set(Event.objects.filter(tenant=tenant).values_list("idempotency_key", flat=True))


def test_stripe_reconcile_finds_and_repairs_missing_events(acme, stripe_standin, client):
    tenant, info = acme
    day = datetime.now(UTC).date() - timedelta(days=1)
    events = _day_events(day, 120)
    outside = [
        stripe_charge_event("evt_before", created=events[0]["created"] - 86400),
        stripe_charge_event("evt_after", created=events[0]["created"] + 86400),
    ]
    stripe_standin.events = events + outside
    missing = {e["id"] for e in events[::24]}  # 5 that Stripe "never delivered"
    for event in events + outside:
        if event["id"] in missing:
            continue
        body = encode(event)
        response = client.generic(
            "POST",
            info.path,
            body,
            content_type="application/json",
            **django_headers({"Stripe-Signature": stripe_header_library(SECRET, body)}),
        )
        assert response.status_code == 200, response.content

    out = _run("--source", "stripe", "--tenant", "acme", "--date", day.isoformat())
    assert "at_source=120 missing_at_ingest=5" in out
    for event_id in missing:
        assert event_id in out
    with system_scope("test"):
        run = SourceReconcileRun.objects.get(source_id=info.source_id, day=day)
    assert (run.at_source, run.missing_at_ingest, run.repaired) == (120, 5, 0)
    listed = [r for r in stripe_standin.requests if r["path"] == "/v1/events"]
    assert len(listed) == 2  # 120 events, pages of 100
    assert listed[1]["query"]["starting_after"].startswith("evt_day_")
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    assert listed[0]["query"]["created[gte]"] == str(start)
    assert listed[0]["query"]["created[lt]"] == str(start + 86400)
    assert all(r["authorization"] == f"Bearer {API_KEY}" for r in listed)
    assert not missing & {k.removeprefix("stripe:") for k in _ledger_keys(tenant)}

    out = _run("--source", "stripe", "--tenant", "acme", "--date", day.isoformat(), "--repair")
    assert "missing_at_ingest=5 repaired=5" in out
    keys = _ledger_keys(tenant)
    assert {f"stripe:{e['id']}" for e in events} <= keys
    with tenant_scope(tenant.id):
        repaired = Event.objects.filter(
            tenant=tenant, idempotency_key__in=[f"stripe:{m}" for m in missing]
        )
        assert {e.key_id for e in repaired} == {info.source_id}
        assert {e.type for e in repaired} == {"stripe.charge.succeeded"}
    with system_scope("test"):
        [audit] = AuditLog.objects.filter(action="reconcile.repair_source")
        run = SourceReconcileRun.objects.get(source_id=info.source_id, day=day)
    assert audit.new["repaired"] == 5
    assert sorted(audit.new["event_ids"]) == sorted(missing)
    assert (run.missing_at_ingest, run.repaired) == (5, 5)
    events_drain(tenant_id=tenant.id, limit=1000)
    with tenant_scope(tenant.id):
        amounts = set(
            EnrichedEvent.objects.filter(tenant=tenant, type="stripe.charge.succeeded").values_list(
                "amount_minor", "currency"
            )
        )
    assert amounts == {(1099, "USD")}

    # Again: nothing missing, nothing repaired, no second audit row.
    out = _run("--source", "stripe", "--tenant", "acme", "--date", day.isoformat(), "--repair")
    assert "missing_at_ingest=0 repaired=0" in out
    with system_scope("test"):
        assert AuditLog.objects.filter(action="reconcile.repair_source").count() == 1


def test_stripe_reconcile_without_an_api_key_says_what_to_do(db, stripe_standin):
    tenant = TenantFactory(slug="acme")
    WebhookSourceFactory(tenant=tenant, kind="stripe", secret=SECRET, actor="t")
    with pytest.raises(CommandError, match="no stripe source with an API key"):
        _run("--source", "stripe", "--tenant", "acme")
    assert stripe_standin.requests == []


def test_source_and_repair_need_a_tenant(db):
    with pytest.raises(CommandError, match="--source needs --tenant"):
        _run("--source", "stripe")


def test_stripe_reconcile_refuses_a_disabled_source_and_never_calls_stripe(acme, stripe_standin):
    tenant, info = acme
    day = datetime.now(UTC).date() - timedelta(days=1)
    stripe_standin.events = _day_events(day, 3)
    source_set_enabled(source_id=info.source_id, enabled=False, actor="t")
    with pytest.raises(CommandError, match=f"source {info.source_id} is disabled"):
        _run("--source", "stripe", "--tenant", "acme", "--date", day.isoformat(), "--repair")
    assert stripe_standin.requests == []
    assert _ledger_keys(tenant) == set()


@pytest.mark.parametrize("state", ["suspended", "offboarded"])
def test_stripe_reconcile_refuses_an_inactive_tenant_and_never_calls_stripe(
    acme,
    stripe_standin,
    settings,
    state,
):
    tenant, _info = acme
    day = datetime.now(UTC).date() - timedelta(days=1)
    stripe_standin.events = _day_events(day, 3)
    if state == "suspended":
        tenant_suspend(tenant=tenant, actor="t")
    else:
        settings.CODEX_OFFBOARD_FENCE_S = 0  # no other process holds its keys here
        tenant_offboard(tenant=tenant, actor="t")
    with pytest.raises(CommandError, match=f"tenant 'acme' is {state}"):
        _run("--source", "stripe", "--tenant", "acme", "--date", day.isoformat(), "--repair")
    assert stripe_standin.requests == []
    assert _ledger_keys(tenant) == set()
    with system_scope("test"):
        assert not AuditLog.objects.filter(action="reconcile.repair_source").exists()
