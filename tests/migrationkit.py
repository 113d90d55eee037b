"""Data-migration test kit: tenant rows through the real write path, migrations walked step by
step as the managed (non-superuser) owner, and every tenant table compared per tenant after each.

    data = migration_data_write()          # at head: several tenants, every kind of row
    history = migration_walk(back_to=[("ingest", "0004_ingest_warnings")])
    history_assert_kept(history)           # each step kept every row of every tenant table
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from codex.db import roles
from tenants.scope import system_scope

# Tenant-owned tables (tenant_id column) and the tenant table itself; partitions are read
# through their parent.
_TABLES_SQL = """
SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND (c.relname = 'tenants_tenant' OR EXISTS (
      SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id'
      AND NOT t.attisdropped))
GROUP BY c.relname
"""


@dataclass
class Snapshot:
    """Every tenant table's rows at one migration state: {table: (columns, [row dicts])}."""

    state: str
    tables: dict[str, tuple[list[str], list[dict]]] = field(default_factory=dict)


def snapshot(state: str) -> Snapshot:
    """Read every tenant table as the owner, in a named system scope (forced RLS applies)."""
    snap = Snapshot(state=state)
    with system_scope("migration-test"), connection.cursor() as cursor:
        cursor.execute(_TABLES_SQL)
        for table, columns in cursor.fetchall():
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")
            snap.tables[table] = (list(columns), [json.loads(r[0]) for r in cursor.fetchall()])
    return snap


def _tenant_of(table: str, row: dict) -> str:
    return str(row["id"] if table == "tenants_tenant" else row["tenant_id"])


def digest(snap: Snapshot, table: str, columns: list[str]) -> dict[str, tuple[int, str]]:
    """Per tenant: (rows, sha256 of its rows over `columns`) of one table."""
    per_tenant: dict[str, list[str]] = {}
    for row in snap.tables[table][1]:
        line = json.dumps([row.get(c) for c in columns], sort_keys=True, default=str)
        per_tenant.setdefault(_tenant_of(table, row), []).append(line)
    return {
        tenant: (len(lines), hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16])
        for tenant, lines in per_tenant.items()
    }


def compare(history: list[Snapshot], first: Snapshot, last: Snapshot) -> dict[str, dict]:
    """Tables in both `first` and `last`, over the columns every state that had them shares.

    A column a step back removed (and the way forward adds again, empty) is not comparable; a
    table absent in between is compared where it exists again.
    """
    out = {}
    for table in sorted(set(first.tables) & set(last.tables)):
        shared = set(first.tables[table][0])
        for snap in history:
            if table in snap.tables:
                shared &= set(snap.tables[table][0])
        columns = sorted(shared)
        out[table] = {
            "before": digest(first, table, columns),
            "after": digest(last, table, columns),
        }
    return out


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


def _state_name(executor: MigrationExecutor, app: str, name: str | None) -> str:
    return f"{app}.{name or 'zero'}"


def migration_walk(*, back_to: list[tuple[str, str | None]]) -> list[Snapshot]:
    """From head back to `back_to` one migration at a time, then forward to head one at a time.

    Runs in owner mode (the suite's owner is no superuser), snapshotting every tenant table
    before the first step and after each; grants the app role its DML at the end, as migrate.
    """
    history = []
    with roles.owner_mode():
        history.append(snapshot("head"))
        executor = _executor()
        for migration, _ in executor.migration_plan(back_to):
            executor = _executor()
            parents = [
                p
                for p in executor.loader.graph.node_map[
                    (migration.app_label, migration.name)
                ].parents
                if p.key[0] == migration.app_label
            ]
            target = (migration.app_label, parents[0].key[1] if parents else None)
            executor.migrate([target])
            history.append(snapshot(f"back to {_state_name(executor, *target)}"))
        executor = _executor()
        for migration, _ in executor.migration_plan(executor.loader.graph.leaf_nodes()):
            executor = _executor()
            executor.migrate([(migration.app_label, migration.name)])
            history.append(snapshot(f"forward to {migration.app_label}.{migration.name}"))
        roles.grant_app_role()
    return history


def history_assert_kept(history: list[Snapshot]) -> dict[str, dict]:
    """Every step kept every row it could: each state equals head on their shared tables."""
    head = history[0]
    report = {}
    for snap in history[1:]:
        for table, sides in compare(history, head, snap).items():
            assert sides["before"] == sides["after"], (
                f"{table} changed between head and {snap.state}: {sides}"
            )
            report[table] = sides["after"]
    return report


@dataclass
class WrittenData:
    """What migration_data_write put in: tenants and the rows per table (for the counts)."""

    tenants: list
    events: int


def migration_data_write(*, tenants: int = 3, per_tenant: int = 6) -> WrittenData:
    """Rows of every kind for several tenants, through the services that write them in production.

    Per tenant: a device and its signing key, a webhook source, an ingestion warning, a flag
    override, events this month through the one-statement
    write (some enriched by the real enrichment, one dead-lettered), events of a past month's
    partition (enriched, dead-lettered) and one in the default partition (no month partition);
    then the nightly reconcile's runs.
    """
    from flags.services import flag_update
    from ingest import partitions
    from ingest.ingest_warnings import WarningEntry, ingest_warnings_record
    from ingest.services.accept import events_ingest
    from ingest.services.deadletters import deadletter_record
    from ingest.services.enrich import events_enrich
    from ingest.validation import parse_body
    from reconcile.tasks import reconcile_nightly
    from tests.factories import (
        DeviceFactory,
        SigningKeyFactory,
        TenantFactory,
        WebhookSourceFactory,
    )
    from tests.helpers import SHOPIFY_SECRET, encode, make_event
    from tests.ingest.lifecycle_helpers import put_event

    now = datetime.now(UTC)
    past = partitions.add_months(partitions.month_floor(now), -2)
    partitions.partitions_ensure(since=past)
    past_at = datetime(past.year, past.month, 10, 12, tzinfo=UTC)
    default_at = now - timedelta(days=3 * 366)  # older than any month partition
    made = []
    count = 0
    for n in range(tenants):
        tenant = TenantFactory()
        key = SigningKeyFactory(tenant=tenant, device=DeviceFactory(tenant=tenant))
        WebhookSourceFactory(tenant=tenant, kind="shopify", secret=SHOPIFY_SECRET, actor="test")
        ingest_warnings_record(
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            key_id=key.key_id,
            entries=[WarningEntry(code="invalid_event", message="bad", item="{}")],
        )
        flag_update(tenant_id=tenant.id, values={"minIntervalSec": 10 + n}, actor="test", via="api")
        docs = [make_event(f"{tenant.slug}-now-{i}") for i in range(per_tenant)]
        results = events_ingest(
            tenant_id=tenant.id, key_id=key.key_id, items=parse_body(encode({"events": docs})).items
        )
        ids = [r.id for r in results]
        events_enrich(tenant_id=tenant.id, event_ids=ids[: per_tenant // 2])
        deadletter_record(
            tenant_id=tenant.id,
            failures={ids[-1]: RuntimeError("boom")},
            attempts=5,
            first_failed_at=None,
        )
        put_event(tenant, f"{tenant.slug}-past-1", past_at, enriched=True)
        put_event(tenant, f"{tenant.slug}-past-2", past_at, dead_letter=True)
        put_event(tenant, f"{tenant.slug}-old-1", default_at, enriched=True)
        made.append(tenant)
        count += per_tenant + 3
    reconcile_nightly()  # a reconcile run per tenant and day
    return WrittenData(tenants=made, events=count)
