"""tenant_offboard: keys and sources revoked, secrets wiped, rows deleted in batches (twice, the
second time after the fence), a tombstone, resumable; every tenant table empty afterwards."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from flags.services import flag_update
from ingest.models import IdempotencyKey
from ingest.services.offboard import tenant_offboard
from reconcile.tasks import reconcile_nightly
from tenants.models import AuditLog, SigningKey, Tenant, WebhookSource
from tenants.scope import system_scope, tenant_scope
from tenants.services.keys import secrets_key_rotate
from tenants.services.sources import source_rotate_secret
from tests.dbutil import database_url, owner_connect
from tests.factories import (
    SigningKeyFactory,
    SourceReconcileRunFactory,
    TenantFactory,
    WebhookSourceFactory,
)
from tests.helpers import STRIPE_SECRET, encode, make_event, tenant_tables
from tests.ingest.lifecycle_helpers import counts, put_event
from tests.migrationkit import migration_data_write
from tests.procs import gunicorn_server
from tests.signing import sign_headers

NOW = datetime.now(UTC)
# What offboarding keeps (docs/lifecycle.md): the tombstone (the tenant row and the revoked keys,
# devices and disabled sources its audit trail names, every secret wiped) and the audit rows.
TOMBSTONE = frozenset(
    {"tenants_tenant", "tenants_device", "tenants_signingkey", "tenants_webhooksource"}
)
AUDIT = frozenset({"tenants_auditlog", "flags_flagchange"})


@pytest.fixture(autouse=True)
def _no_fence(settings):
    """Only this process holds keys in most tests: no wait before the second pass (the live
    test below sets the real fence of its servers)."""
    settings.CODEX_OFFBOARD_FENCE_S = 0


def _seed(tenant, n: int = 6) -> None:
    SigningKeyFactory(tenant=tenant)
    SigningKeyFactory(tenant=tenant)
    WebhookSourceFactory(tenant=tenant)
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


def test_offboard_revokes_deletes_and_keeps_a_tombstone(db):
    gone, stays = TenantFactory(slug="gone"), TenantFactory(slug="stays")
    _seed(gone)
    _seed(stays)
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


def test_offboard_refuses_a_wrong_confirmation_and_an_unknown_tenant(db):
    tenant = TenantFactory(slug="keepme")
    put_event(tenant, "k-1", NOW)
    with pytest.raises(CommandError, match="--confirm must repeat the tenant's slug"):
        call_command("tenant_offboard", "keepme", "--confirm", "keep-me")
    with pytest.raises(CommandError, match="no tenant 'ghost'"):
        call_command("tenant_offboard", "ghost", "--confirm", "ghost")
    with system_scope("test-check"):
        assert Tenant.objects.get(slug="keepme").status == Tenant.Status.ACTIVE
        assert not AuditLog.objects.filter(action__startswith="tenant.offboard").exists()
    assert counts(tenant)["ingest_event"] == 1


def test_offboard_killed_midway_finishes_when_run_again(transactional_db):
    tenant = TenantFactory(slug="crashy")
    _seed(tenant, n=12)
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


def _rows_per_table(tenant_id) -> dict[str, int]:
    """Every tenant-owned table in pg_catalog (partitions too): the tenant's rows in each."""
    out = {}
    with system_scope("test-check"), connection.cursor() as cursor:
        for t in tenant_tables(cursor):
            cursor.execute(
                f"SELECT count(*) FROM {t['table']} WHERE {t['column']} = %s", [str(tenant_id)]
            )
            out[t["table"]] = cursor.fetchone()[0]
    return out


def _partitions() -> set[str]:
    with system_scope("test-check"), connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relispartition")
        return {name for (name,) in cursor.fetchall()}


def _assert_only_tombstone_and_audit(tenant) -> None:
    """Each tenant table is empty for the tenant but the tombstone's and the audit's, and those
    hold nothing usable: offboarded, keys revoked, sources disabled, every secret wiped."""
    left = {t: n for t, n in _rows_per_table(tenant.id).items() if n and t not in TOMBSTONE | AUDIT}
    assert left == {}, f"rows left for the offboarded tenant: {left}"
    with system_scope("test-check"):
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.OFFBOARDED
        for key in SigningKey.objects.filter(tenant_id=tenant.id):
            assert (key.status, key.secret_encrypted) == (SigningKey.Status.REVOKED, "")
        for source in WebhookSource.objects.filter(tenant_id=tenant.id):
            assert not source.enabled
            assert source.secret_encrypted == ""
            assert source.previous_secret_encrypted == ""
            assert source.previous_valid_until is None
            assert source.api_key_encrypted == ""


def test_offboard_wipes_every_secret_and_its_source_then_answers_410(db, client):
    tenant = TenantFactory(slug="wiped")
    SigningKeyFactory(tenant=tenant)
    info = WebhookSourceFactory(tenant=tenant, kind="stripe", api_key="rk_test_wiped", actor="t")
    source_rotate_secret(
        source_id=info.source_id, secret=STRIPE_SECRET + "2", overlap=timedelta(hours=1), actor="t"
    )
    with system_scope("test-check"):
        row = WebhookSource.objects.get(source_id=info.source_id)
    assert all((row.secret_encrypted, row.previous_secret_encrypted, row.api_key_encrypted))

    report = tenant_offboard(tenant=tenant, actor="t")

    _assert_only_tombstone_and_audit(tenant)
    assert report.secrets_wiped == 2  # the key and the source
    # A delivery to the wiped source is refused as disabled (410), not a secret-store outage.
    response = client.post(info.path, b"{}", content_type="application/json")
    assert response.status_code == 410, response.content
    assert response.json()["error"]["code"] == "source_disabled"
    secrets_key_rotate(actor="t")  # wiped secrets are skipped, not "undecryptable"
    with system_scope("test-check"):
        [audit] = AuditLog.objects.filter(tenant=tenant, action="tenant.offboard")
    assert audit.new["secrets_wiped"] == 2
    assert "rk_test_wiped" not in str(audit.new)


def test_offboard_leaves_only_the_tombstone_and_audit_rows_in_every_tenant_table(db):
    data = migration_data_write(tenants=2, per_tenant=4)
    gone, stays = data.tenants
    # reconcile --source stripe's run row (no other writer here)
    SourceReconcileRunFactory(tenant=gone, source_id="src_x", day=NOW.date(), at_source=1)
    before = _rows_per_table(gone.id)
    partitions = _partitions()
    empty = sorted(t for t, n in before.items() if n == 0 and t not in partitions)
    assert empty == [], (
        f"seed these tables for the tenant so offboarding is proven on them: {empty}"
    )
    stays_before = _rows_per_table(stays.id)

    tenant_offboard(tenant=gone, actor="t", limit=3)
    reconcile_nightly()  # the nightly job afterwards writes nothing for the tombstone either

    _assert_only_tombstone_and_audit(gone)
    after = _rows_per_table(gone.id)
    assert after["tenants_tenant"] == 1
    assert after["tenants_auditlog"] > before["tenants_auditlog"]  # the offboarding's own rows
    assert _rows_per_table(stays.id) == stays_before


@pytest.mark.slow
def test_offboarding_under_signed_load_leaves_nothing_accepted_meanwhile(
    transactional_db, settings
):
    tenant = TenantFactory(slug="busy")
    key = SigningKeyFactory(tenant=tenant)
    flag_update(tenant_id=tenant.id, values={"ingestRatePerSec": 10_000}, actor="t", via="cli")
    # Every process shares one configuration; the fence this process waits is what the servers'
    # settings compute: their key cache TTL (5 s) + 3 x their statement timeout (2 s) + 2 s.
    env = {
        "DATABASE_URL": database_url(),
        "CODEX_KEY_CACHE_TTL_S": "5",
        "CODEX_DB_STATEMENT_TIMEOUT_MS": "2000",
    }
    settings.CODEX_OFFBOARD_FENCE_S = 5 + 3 * 2 + 2
    sent: list[tuple[float, int]] = []
    stop = threading.Event()

    def post(url: str) -> int:
        body = encode(make_event())
        headers = sign_headers(key.key_id, key.secret, body) | {"Content-Type": "application/json"}
        return httpx.post(url + "/v1/events", content=body, headers=headers, timeout=10).status_code

    def sender(url: str) -> None:
        while not stop.is_set():
            at = time.monotonic()
            sent.append((at, post(url)))

    with gunicorn_server(env, workers=2) as (url, _proc):
        # Both workers resolve and cache the key (connections without keep-alive spread them).
        assert all(post(url) == 202 for _ in range(12))
        threads = [threading.Thread(target=sender, args=(url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            began = time.monotonic()
            report = tenant_offboard(tenant=tenant, actor="t")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    accepted_after = sum(1 for at, status in sent if at >= began and status == 202)
    assert accepted_after > 0, "no request was accepted after offboarding began: nothing proven"
    assert {status for at, status in sent if at >= began} <= {202, 401, 403}
    _assert_only_tombstone_and_audit(tenant)
    with system_scope("test-check"):
        [audit] = AuditLog.objects.filter(tenant=tenant, action="tenant.offboard")
    assert audit.new["deleted_after_fence"] == report.late  # what the second pass removed
