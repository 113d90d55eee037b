"""replay_dlq --since/--until: replay what was dead-lettered in a time window (audited)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ingest.models import DeadLetter
from ingest.services.deadletters import deadletter_record
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.factories import EventFactory, TenantFactory
from tests.helpers import make_event

pytestmark = pytest.mark.django_db


def _park(tenant, key: str, hours_ago: float) -> DeadLetter:
    event = EventFactory.from_doc(tenant, make_event(key))
    deadletter_record(
        tenant_id=tenant.id, failures={event.id: ValueError("x")}, attempts=4, first_failed_at=None
    )
    with tenant_scope(tenant.id):
        entry = DeadLetter.objects.get(tenant=tenant, event_id=event.id)
        when = timezone.now() - timedelta(hours=hours_ago)
        DeadLetter.objects.filter(id=entry.id).update(first_failed_at=when, last_failed_at=when)
        return entry


def _resolved(entry) -> bool:
    with system_scope("test"):
        return DeadLetter.objects.get(id=entry.id).resolved_at is not None


def test_replay_by_window_replays_only_what_was_dead_lettered_in_it(db):
    a, b = TenantFactory(), TenantFactory()
    old, inside_a, inside_b, recent = (
        _park(a, "old", 30),
        _park(a, "in-a", 5),
        _park(b, "in-b", 4),
        _park(b, "recent", 0.5),
    )
    now = datetime.now(UTC)
    since = (now - timedelta(hours=6)).isoformat()
    until = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")  # naive: UTC
    out = io.StringIO()
    call_command("replay_dlq", "--since", since, "--until", until, "--actor", "ops", stdout=out)
    assert "replayed 2: 2 resolved, 0 failed" in out.getvalue()
    assert [_resolved(e) for e in (old, inside_a, inside_b, recent)] == [False, True, True, False]
    with system_scope("test"):
        audits = AuditLog.objects.filter(action="dlq.replay", actor="ops")
        assert {x.tenant_id for x in audits} == {a.id, b.id}


def test_replay_window_combines_with_tenant_and_refuses_nonsense(db):
    a, b = TenantFactory(), TenantFactory()
    mine, theirs = _park(a, "mine", 2), _park(b, "theirs", 2)
    since = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    call_command("replay_dlq", "--since", since, "--tenant", a.slug, stdout=io.StringIO())
    assert (_resolved(mine), _resolved(theirs)) == (True, False)
    with pytest.raises(CommandError, match="before --until"):
        call_command("replay_dlq", "--since", since, "--until", since)
    with pytest.raises(CommandError, match="--all"):
        call_command("replay_dlq", "--all", "--since", since)
    with pytest.raises(CommandError, match="--since: invalid moment_parse value"):
        call_command("replay_dlq", "--since", "yesterday-ish")
