"""The deletion registry: every tenant-owned table is some app's own entry, walked top layer down,
in batches; an app can register and delete only its own tables."""

from __future__ import annotations

import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from flags.services import flag_update
from ingest.services.purge import PARTITION_KEY
from tenants import deletions
from tenants.deletions import (
    WALK_ORDER,
    Deletion,
    Subject,
    app_tables,
    deletions_register,
    deletions_registered,
    subject_rows_delete,
    tenant_rows_delete,
)
from tests.factories import TenantFactory
from tests.ingest.lifecycle_helpers import counts, put_event

NOW = datetime.now(UTC)

# Tables (partitioned parents included, partitions not: a parent's delete reaches them) with a
# tenant_id column, and whether each is partitioned.
_TENANT_TABLES_SQL = """
SELECT c.relname, c.relkind = 'p'
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""


def _catalogue() -> dict[str, bool]:
    with connection.cursor() as cursor:
        cursor.execute(_TENANT_TABLES_SQL)
        return dict(cursor.fetchall())


def _model_tables() -> set[str]:
    """Every concrete model's table with a tenant_id column, in any installed app."""
    return {
        model._meta.db_table
        for model in apps.get_models()
        if not model._meta.proxy
        and any(getattr(f, "column", None) == "tenant_id" for f in model._meta.concrete_fields)
    }


def _registered() -> dict[str, tuple[str, Deletion]]:
    return {entry.table: (app, entry) for app, entry in deletions_registered()}


def _unregistered() -> list[str]:
    """Tenant-owned tables (catalogue or models) that no app registered."""
    tables = set(_catalogue()) | _model_tables()
    assert {"ingest_event", "events_enriched", "flags_tenantflag"} <= tables  # the queries work
    return sorted(tables - set(_registered()))


def test_every_tenant_owned_table_is_in_an_apps_registration(db):
    missing = _unregistered()
    assert missing == [], (
        f"register these in their app's deletions.py (docs/architecture.md): {missing}"
    )


def test_the_registration_check_names_a_table_no_app_registered(db, monkeypatch):
    monkeypatch.setitem(deletions._registry, "flags", ())
    assert _unregistered() == ["flags_flagchange", "flags_tenantflag"]


def test_every_registered_table_exists_is_its_apps_own_and_is_registered_once(db):
    catalogue = _catalogue()
    entries = deletions_registered()
    tables = [entry.table for _, entry in entries]
    assert len(tables) == len(set(tables)), tables
    for app, entry in entries:
        assert entry.table in app_tables(app), (app, entry.table)
        assert entry.table in catalogue or entry.table == "tenants_tenant", entry.table


def test_the_walk_goes_down_the_import_layers_and_every_app_registers(db):
    pyproject = tomllib.loads(Path(settings.BASE_DIR, "pyproject.toml").read_text())
    [layers] = [
        c["layers"] for c in pyproject["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    assert tuple(layer for layer in layers if layer != "codex") == WALK_ORDER
    walked = list(dict.fromkeys(app for app, _ in deletions_registered()))
    assert walked == list(WALK_ORDER)


def test_a_partitioned_table_is_deleted_by_its_key(db):
    registered = _registered()
    partitioned = [table for table, is_parent in _catalogue().items() if is_parent]
    assert "ingest_event" in partitioned
    for table in partitioned:
        assert registered[table][1].key, f"{table}: a ctid is unique only per partition"


def test_only_the_tombstone_and_the_audit_trail_are_kept(db):
    kept = sorted(entry.table for _, entry in deletions_registered() if entry.kept)
    assert kept == [
        "flags_flagchange",
        "tenants_auditlog",
        "tenants_device",
        "tenants_signingkey",
        "tenants_tenant",
        "tenants_webhooksource",
    ]


def test_an_entry_must_say_what_erasure_does_and_cannot_be_both_kept_and_deleted():
    with pytest.raises(ImproperlyConfigured, match="say how erasure treats it"):
        Deletion("reconcile_run")
    with pytest.raises(ImproperlyConfigured, match="say how erasure treats it"):
        Deletion("reconcile_run", subject_where="true", subject_before="day", not_erased="no")
    with pytest.raises(ImproperlyConfigured, match="subject_where needs subject_before"):
        Deletion("reconcile_run", subject_where="true")
    with pytest.raises(ImproperlyConfigured, match="kept by offboarding, or deleted, not both"):
        Deletion("reconcile_run", kept="audit", offboard=lambda **_: None, not_erased="no")


def test_an_app_cannot_register_another_apps_table_or_sit_outside_the_layers():
    before = deletions_registered()
    with pytest.raises(ImproperlyConfigured, match="reconcile may register only its own tables"):
        deletions_register("reconcile", Deletion("ingest_event", not_erased="no"))
    with pytest.raises(ImproperlyConfigured, match=r"not in tenants\.deletions\.WALK_ORDER"):
        deletions_register("auth", Deletion("auth_user", not_erased="no"))
    assert deletions_registered() == before


def test_an_apps_own_delete_that_reaches_another_apps_table_is_refused(monkeypatch):
    def sneaky(*, tenant_id, limit, progress):
        progress("ingest_event", 0)

    monkeypatch.setitem(
        deletions._registry,
        "reconcile",
        (Deletion("reconcile_run", offboard=sneaky, not_erased="no"),),
    )
    with pytest.raises(ImproperlyConfigured, match="reconcile deleted rows of ingest_event"):
        tenant_rows_delete(tenant_id=str(uuid.uuid4()), progress=lambda table, n: None)


def test_offboarding_walk_deletes_every_apps_rows_in_batches_top_down_and_reruns_clean(db):
    gone, stays = TenantFactory(slug="walk-gone"), TenantFactory(slug="walk-stays")
    for tenant in (gone, stays):
        for i in range(3):
            put_event(tenant, f"{tenant.slug}-{i}", NOW, enriched=i == 0, dead_letter=i == 1)
        flag_update(tenant_id=tenant.id, values={"retentionDays": 90}, actor="t", via="cli")
    batches: list[tuple[str, int]] = []

    tenant_rows_delete(
        tenant_id=str(gone.id), limit=1, progress=lambda t, n: batches.append((t, n))
    )

    deleted_order = [e.table for _, e in deletions_registered() if not e.kept]
    assert list(dict.fromkeys(t for t, _ in batches)) == deleted_order
    assert all(n <= 1 for _, n in batches)  # every statement bounded by the batch
    totals = {t: sum(n for tt, n in batches if tt == t) for t in deleted_order}
    assert (totals["ingest_event"], totals["ingest_idempotency"]) == (3, 3)
    assert totals["flags_tenantflag"] == 1
    assert counts(gone) == dict.fromkeys(counts(gone), 0)
    assert counts(stays)["ingest_event"] == 3
    # Run again (a rerun after a crash, or the pass after the fence): only the empty batches.
    again: list[tuple[str, int]] = []
    tenant_rows_delete(tenant_id=str(gone.id), limit=1, progress=lambda t, n: again.append((t, n)))
    assert {n for _, n in again} == {0}


def test_a_declarative_subject_entry_deletes_the_subjects_rows_before_a_time_in_its_batches(
    db, monkeypatch
):
    tenant = TenantFactory(slug="walk-subject")
    old, new = NOW - timedelta(days=3), NOW
    for i in range(3):
        put_event(tenant, f"old-{i}", old, subject="sam")
    put_event(tenant, "new-0", new, subject="sam")
    put_event(tenant, "other-0", old, subject="kim")
    entry = Deletion(
        "ingest_event",
        subject_where="subject_id = %(subject)s",
        subject_before="received_at",
        key=PARTITION_KEY,
        batch=2,
    )
    monkeypatch.setitem(deletions._registry, "ingest", (entry,))
    batches: list[tuple[str, int]] = []

    subject_rows_delete(
        subject=Subject(tenant_id=str(tenant.id), subject_id="sam", before=NOW - timedelta(days=1)),
        progress=lambda t, n: batches.append((t, n)),
    )

    assert batches == [("ingest_event", 2), ("ingest_event", 1)]
    assert counts(tenant)["ingest_event"] == 2  # sam's newer event and kim's stay
