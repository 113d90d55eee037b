"""tenant_offboard: keys and sources revoked, rows deleted in batches, a tombstone, resumable."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from flags.services import flag_update
from ingest.models import IdempotencyKey
from tenants.models import AuditLog, SigningKey, Tenant, WebhookSource
from tenants.scope import system_scope, tenant_scope
from tenants.services.sources import source_create
from tests.dbutil import database_url, owner_connect
from tests.ingest.lifecycle_helpers import counts, put_event

NOW = datetime.now(UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _seed(tenant, key_factory, n: int = 6) -> None:
    key_factory(tenant)
    key_factory(tenant)
    source_create(tenant=tenant, kind="standard", secret=SECRET, actor="test")
    flag_update(tenant_id=tenant.id, values={"retentionDays": 90}, actor="test", via="cli")
    for i in range(n):
        put_event(tenant, f"{tenant.slug}-{i}", NOW, enriched=i % 2 == 0, dead_letter=i == 1)


def _tenant_rows(tenant) -> dict[str, int]:
    rows = counts(tenant)
    with owner_connect(autocommit=True) as conn:
        for table in ("flags_tenantflag", "reconcile_run"):
            rows[table] = conn.execute(
                f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                [tenant.id],
            ).fetchone()[0]
    return rows


def test_offboard_revokes_deletes_and_keeps_a_tombstone(db, tenant_factory, key_factory):
    gone, stays = tenant_factory("gone"), tenant_factory("stays")
    _seed(gone, key_factory)
    _seed(stays, key_factory)
    out = io.StringIO()
    call_command("tenant_offboard", "gone", "--confirm", "gone", "--batch", "2", stdout=out)
    assert out.getvalue().startswith("gone: offboarded; keys_revoked=2 sources_disabled=1")

    with system_scope("test-check"):
        tomb = Tenant.objects.get(slug="gone")
        assert tomb.status == Tenant.Status.OFFBOARDED
        assert set(SigningKey.objects.filter(tenant=tomb).values_list("status", flat=True)) == {
            "revoked"
        }
        assert not WebhookSource.objects.filter(tenant=tomb, enabled=True).exists()
        actions = set(AuditLog.objects.filter(tenant=tomb).values_list("action", flat=True))
        assert Tenant.objects.get(slug="stays").status == Tenant.Status.ACTIVE
    assert {"tenant.offboard.start", "tenant.offboard", "signing_key.revoke"} <= actions
    assert all(n == 0 for n in counts(gone).values()), counts(gone)
    with tenant_scope(gone.id):
        assert not IdempotencyKey.objects.exists()
    assert counts(stays)["ingest_event"] == 6
    # A second run has nothing left to do.
    out = io.StringIO()
    call_command("tenant_offboard", "gone", "--confirm", "gone", stdout=out)
    assert "already offboarded" in out.getvalue()


def test_offboard_refuses_a_wrong_confirmation_and_an_unknown_tenant(db, tenant_factory):
    tenant = tenant_factory("keepme")
    put_event(tenant, "k-1", NOW)
    with pytest.raises(CommandError, match="--confirm must repeat the tenant's slug"):
        call_command("tenant_offboard", "keepme", "--confirm", "keep-me")
    with pytest.raises(CommandError, match="no tenant 'ghost'"):
        call_command("tenant_offboard", "ghost", "--confirm", "ghost")
    with system_scope("test-check"):
        assert Tenant.objects.get(slug="keepme").status == Tenant.Status.ACTIVE
        assert not AuditLog.objects.filter(action__startswith="tenant.offboard").exists()
    assert counts(tenant)["ingest_event"] == 1


def test_offboard_killed_midway_finishes_when_run_again(
    transactional_db, tenant_factory, key_factory
):
    tenant = tenant_factory("crashy")
    _seed(tenant, key_factory, n=12)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        # The held lock below must block the command, not time it out.
        "CODEX_DB_LOCK_TIMEOUT_MS": "120000",
        "CODEX_DB_STATEMENT_TIMEOUT_MS": "120000",
    }
    with owner_connect() as locker:
        # Everything after the ledger waits on this lock: the command gets half-way and stops.
        locker.execute("LOCK TABLE ingest_idempotency IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "tenant_offboard",
                "crashy",
                "--confirm",
                "crashy",
                "--batch",
                "3",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            with owner_connect(autocommit=True) as watcher:
                while True:
                    left = watcher.execute(
                        "SELECT count(*) FROM ingest_event WHERE tenant_id = %s", [tenant.id]
                    ).fetchone()[0]
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query ILIKE '%%ingest_idempotency%%'"
                    ).fetchone()[0]
                    if left == 0 and waiting:
                        break
                    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                    assert time.monotonic() < deadline, "the command never reached the lock"
                    time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)  # a crash, half-way through
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        locker.rollback()

    half = _tenant_rows(tenant)
    assert half["ingest_event"] == 0
    assert half["ingest_idempotency"] == 12  # not reached before the crash
    with system_scope("test-check"):
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.SUSPENDED
        assert not AuditLog.objects.filter(tenant=tenant, action="tenant.offboard").exists()

    out = io.StringIO()
    call_command("tenant_offboard", "crashy", "--confirm", "crashy", "--batch", "3", stdout=out)
    assert "crashy: offboarded" in out.getvalue()
    assert all(n == 0 for n in _tenant_rows(tenant).values()), _tenant_rows(tenant)
    with system_scope("test-check"):
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.OFFBOARDED
