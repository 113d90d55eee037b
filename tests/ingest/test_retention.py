"""Retention: per-tenant retentionDays, whole months dropped, batches, audit, idempotency expiry."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from prometheus_client import REGISTRY

from flags.registry import spec_for
from flags.services import flag_update
from ingest import partitions
from ingest.services.accept import events_ingest
from ingest.services.retention import idempotency_grace, retention_enforce
from ingest.validation import parse_body
from tenants.models import AuditLog
from tenants.scope import system_scope
from tests.factories import TenantFactory
from tests.helpers import encode, make_event
from tests.ingest.lifecycle_helpers import counts, put_event

NOW = datetime.now(UTC)


def _retention(commit_hooks, tenant, days: int) -> None:
    """Set retentionDays; flag_update drops the flags cache on commit, so the hooks run now."""
    commit_hooks(
        flag_update, tenant_id=tenant.id, values={"retentionDays": days}, actor="test", via="cli"
    )


def _deleted(reason: str, table: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "codex_ingest_lifecycle_deleted_rows_total", {"reason": reason, "table": table}
        )
        or 0.0
    )


def _audits(action: str):
    with system_scope("test-check"):
        return list(AuditLog.objects.filter(action=action).order_by("at"))


def test_retention_days_flag_defaults_to_400_within_documented_bounds():
    spec = spec_for("retentionDays")
    assert spec.default == settings.CODEX_RETENTION_DAYS == 400
    assert (spec.minimum, spec.maximum) == (7, 3650)
    assert not spec.public
    assert "ingest-retention-nightly" in settings.CELERY_BEAT_SCHEDULE


def test_retention_removes_only_what_each_tenants_flag_no_longer_keeps(db, commit_hooks):
    short, long_ = TenantFactory(slug="short"), TenantFactory(slug="long")
    _retention(commit_hooks, short, 30)
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
    partitions.partitions_ensure(since=old.date())
    put_event(short, "s-old", old, enriched=True, dead_letter="resolved")
    put_event(short, "s-old-open", old, dead_letter=True)
    put_event(short, "s-new", recent, enriched=True, dead_letter="resolved")
    put_event(long_, "l-old", old, enriched=True)
    before = _deleted("retention", "ingest_event")

    dry = retention_enforce(dry_run=True, now=NOW)
    by_slug = {t.slug: t for t in dry.tenants}
    assert (by_slug["short"].events, by_slug["short"].enriched) == (2, 1)
    assert by_slug["long"].events == 0
    assert counts(short)["ingest_event"] == 3  # a dry run changes nothing
    assert _audits("retention.enforce") == []

    report = retention_enforce(now=NOW, actor="test")
    got = {t.slug: t for t in report.tenants}["short"]
    assert (got.events, got.enriched, got.dead_letters) == (2, 1, 2)
    assert counts(short) == {
        "ingest_event": 1,
        "events_enriched": 1,
        "ingest_deadletter": 1,
        # keys outlive their events by the grace period
        "ingest_idempotency": 3,
    }
    assert counts(long_)["ingest_event"] == 1
    [audit] = _audits("retention.enforce")
    assert audit.tenant_id == short.id
    assert audit.new["events"] == 2
    assert audit.new["retention_days"] == 30
    assert "s-old" not in str(audit.new)
    assert _deleted("retention", "ingest_event") - before == 2


def test_retention_deletes_in_batches_until_nothing_is_left(db, commit_hooks):
    tenant = TenantFactory()
    _retention(commit_hooks, tenant, 7)
    old = NOW - timedelta(days=10)
    partitions.partitions_ensure(since=old.date())
    for i in range(7):
        put_event(tenant, f"b-{i}", old, enriched=True)
    report = retention_enforce(tenant_slug=tenant.slug, now=NOW, limit=2)
    assert report.tenants[0].events == 7
    assert counts(tenant)["ingest_event"] == 0
    assert counts(tenant)["events_enriched"] == 0


def test_retention_drops_a_month_no_tenant_needs_and_deletes_inside_one_that_is(db, commit_hooks):
    keeper, other = TenantFactory(slug="keeper"), TenantFactory(slug="other")
    month = date(2020, 1, 1)
    partitions.partitions_ensure(since=month, today=month, months_ahead=1)
    put_event(keeper, "k-2020", datetime(2020, 1, 15, tzinfo=UTC), enriched=True)
    put_event(other, "o-2020", datetime(2020, 1, 15, tzinfo=UTC), enriched=True)
    put_event(other, "o-2020-02", datetime(2020, 2, 15, tzinfo=UTC), dead_letter=True)
    _retention(commit_hooks, keeper, 3650)  # keeps 2020 (within ten years of now): no month may go
    report = retention_enforce(now=NOW)
    assert report.partitions_dropped == []
    assert counts(keeper)["ingest_event"] == 1
    assert counts(other)["ingest_event"] == 0  # deleted row by row instead

    _retention(commit_hooks, keeper, 400)
    put_event(other, "o-2020-b", datetime(2020, 1, 20, tzinfo=UTC), dead_letter=True)
    with connection.cursor() as cursor:
        # The rows' deferred tenant checks run now, as they would have at their commit long ago
        # (a table with pending trigger events cannot be dropped in the same transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    report = retention_enforce(now=NOW, actor="test")
    assert {
        "ingest_event_p202001",
        "events_enriched_p202001",
        "ingest_event_p202002",
        "events_enriched_p202002",
    } <= set(report.partitions_dropped)
    assert [m for _, m in partitions.month_partitions(table="ingest_event") if m.year == 2020] == []
    assert counts(keeper)["ingest_event"] == 0
    assert counts(other)["ingest_deadletter"] == 0
    [drop] = _audits("retention.partitions_drop")
    assert drop.tenant_id is None
    assert "ingest_event_p202001" in drop.new["partitions"]
    # This month and the ones ahead are never dropped.
    this_month = partitions.month_floor(NOW)
    assert this_month in [m for _, m in partitions.month_partitions(table="ingest_event")]


def test_an_expired_key_is_a_duplicate_within_the_grace_then_a_new_event(db, commit_hooks):
    tenant = TenantFactory()
    _retention(commit_hooks, tenant, 7)
    grace = idempotency_grace()
    within = NOW - timedelta(days=8)
    beyond = NOW - timedelta(days=7) - grace - timedelta(days=1)
    partitions.partitions_ensure(since=beyond.date())
    items = {key: parse_body(encode(make_event(key))).items for key in ("in-grace", "expired")}
    first = put_event(tenant, "in-grace", within)
    put_event(tenant, "expired", beyond)
    # The stored fingerprints are the real ones, so a resend is a duplicate, not a conflict.
    from ingest.models import IdempotencyKey
    from tenants.scope import tenant_scope

    with tenant_scope(tenant.id):
        for key, its in items.items():
            IdempotencyKey.objects.filter(tenant_id=tenant.id, idempotency_key=key).update(
                fingerprint=its[0].event.fingerprint
            )

    retention_enforce(tenant_slug=tenant.slug, now=NOW)
    assert counts(tenant)["ingest_event"] == 0
    assert counts(tenant)["ingest_idempotency"] == 1

    [again] = events_ingest(tenant_id=tenant.id, key_id="k", items=items["in-grace"])
    assert (again.status, again.id) == ("duplicate", first.id)
    assert counts(tenant)["ingest_event"] == 0  # not stored again
    [renewed] = events_ingest(tenant_id=tenant.id, key_id="k", items=items["expired"])
    assert renewed.status == "accepted"
    assert counts(tenant)["ingest_event"] == 1


def test_retention_command_dry_run_and_unknown_tenant(db, commit_hooks):
    tenant = TenantFactory(slug="cmd")
    _retention(commit_hooks, tenant, 7)
    partitions.partitions_ensure(since=(NOW - timedelta(days=9)).date())
    put_event(tenant, "c-old", NOW - timedelta(days=9))
    out = io.StringIO()
    call_command("retention_enforce", "--tenant", "cmd", "--dry-run", stdout=out)
    assert "cmd: retentionDays=7" in out.getvalue()
    assert "would delete events=1" in out.getvalue()
    assert counts(tenant)["ingest_event"] == 1
    out = io.StringIO()
    call_command("retention_enforce", "--tenant", "cmd", stdout=out)
    assert "deleted events=1" in out.getvalue()
    assert counts(tenant)["ingest_event"] == 0
    with pytest.raises(CommandError, match="no tenant 'nope'"):
        call_command("retention_enforce", "--tenant", "nope")
