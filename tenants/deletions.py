"""The deletion registry: each app declares what offboarding and erasure remove from its tables.

Like Sentry's deletions: the app that owns a table says, from its own `deletions.py` (imported by
its AppConfig.ready()), how a tenant's rows leave it when the tenant is offboarded and how a
subject's rows leave it when the subject is erased, or why they stay. Offboarding and erasure
(ingest.services.offboard, ingest.services.erasure) only walk this registry, top layer first
(reconcile, ingest, flags, tenants), so no app deletes from another app's tables and a new table
joins both by one entry in its own app. `tests/tenants/test_deletions_registry.py` fails for a
tenant-owned table that no app registered.

Every delete here goes in batches, each its own short transaction in the tenant's scope (RLS
backs the tenant filter): no long locks, and a crash loses at most one batch, so a rerun
finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from tenants.scope import tenant_scope

BATCH = 5000

# The walk order: the layers top down, as the import-linter layers contract (pyproject.toml) has
# them, so what depends on a table goes before it. Names, not imports: nothing here imports an
# app above tenants.
WALK_ORDER = ("reconcile", "ingest", "flags", "tenants")

# progress(table, rows) after each batch: the callers count per table (report, audit, metric).
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Subject:
    """Whose rows an erasure removes: one subject of one tenant (before `before`, if given)."""

    tenant_id: str
    subject_id: str
    before: datetime | None = None


# An app's own batched delete, for rows a plain per-table entry cannot express (several of its
# tables in one statement, a match on stored text). It reports each batch through `progress`.
TenantDelete = Callable[..., None]  # (*, tenant_id: str, limit: int, progress: Progress)
SubjectDelete = Callable[..., None]  # (*, subject: Subject, limit: int, progress: Progress)


@dataclass(frozen=True)
class Deletion:
    """What offboarding and erasure do to one table of the registering app.

    Offboarding: every row of the tenant goes, batch by batch (`offboard`: the app's own batched
    delete instead), unless `kept` says why the rows stay (the tombstone, the audit trail).
    Erasure: exactly one of `subject_where` (an SQL condition selecting the subject's rows, with
    `subject_before`, the time column `before` bounds), `erase` (the app's own batched delete)
    or `not_erased` (why erasure leaves the table alone: no subject data, or another entry of
    the same app takes the rows with theirs).
    `key`: the columns that name a row of a partitioned table (a ctid is only unique within
    one partition); `batch`: rows per statement unless the caller sets its own.
    """

    table: str
    kept: str = ""
    offboard: TenantDelete | None = None
    subject_where: str = ""
    subject_before: str = ""
    erase: SubjectDelete | None = None
    not_erased: str = ""
    key: tuple[str, ...] = ()
    batch: int = BATCH

    def __post_init__(self) -> None:
        if self.kept and self.offboard is not None:
            raise ImproperlyConfigured(f"{self.table}: kept by offboarding, or deleted, not both")
        decisions = [bool(self.subject_where), self.erase is not None, bool(self.not_erased)]
        if sum(decisions) != 1:
            raise ImproperlyConfigured(
                f"{self.table}: say how erasure treats it: subject_where, erase or not_erased"
            )
        if self.subject_where and not self.subject_before:
            raise ImproperlyConfigured(f"{self.table}: subject_where needs subject_before")
        if self.batch < 1:
            raise ImproperlyConfigured(f"{self.table}: batch must be at least 1")


_registry: dict[str, tuple[Deletion, ...]] = {}


def app_tables(app_label: str) -> frozenset[str]:
    """The tables an app's own (concrete) models define."""
    models = apps.get_app_config(app_label).get_models()
    return frozenset(m._meta.db_table for m in models if not m._meta.proxy)


def deletions_register(app_label: str, *entries: Deletion) -> None:
    """An app's entries, in the order its deletes run (replaces what the app registered before).

    Refuses a table the app does not own: no app deletes another app's rows.
    """
    if app_label not in WALK_ORDER:
        raise ImproperlyConfigured(f"{app_label}: not in tenants.deletions.WALK_ORDER")
    foreign = sorted({e.table for e in entries} - app_tables(app_label))
    if foreign:
        raise ImproperlyConfigured(f"{app_label} may register only its own tables, not {foreign}")
    _registry[app_label] = tuple(entries)


def deletions_registered() -> list[tuple[str, Deletion]]:
    """Every (app, entry), top layer first, each app's in its own order."""
    return [(label, e) for label in WALK_ORDER for e in _registry.get(label, ())]


def _guarded(app_label: str, progress: Progress) -> Progress:
    """progress, refusing a table of another app (an app's own delete reports what it deleted)."""
    own = app_tables(app_label)

    def report(table: str, n: int) -> None:
        if table not in own:
            raise ImproperlyConfigured(f"{app_label} deleted rows of {table}, not its table")
        progress(table, n)

    return report


def tenant_rows_delete(*, tenant_id: str, progress: Progress, limit: int | None = None) -> None:
    """Offboarding's delete pass: every registered table's rows of the tenant, top layer first.

    `limit` (rows per statement) overrides each entry's batch. Idempotent: run it again after a
    crash, or again after the offboarding fence, and it deletes what is left.
    """
    for label, entry in deletions_registered():
        if entry.kept:
            continue
        size = limit or entry.batch
        report = _guarded(label, progress)
        if entry.offboard is not None:
            entry.offboard(tenant_id=tenant_id, limit=size, progress=report)
        else:
            rows_delete(
                entry.table, tenant_id=tenant_id, key=entry.key, limit=size, on_batch=report
            )


def subject_rows_delete(*, subject: Subject, progress: Progress, limit: int | None = None) -> None:
    """Erasure's delete pass: every registered table's rows of the subject, top layer first."""
    for label, entry in deletions_registered():
        size = limit or entry.batch
        report = _guarded(label, progress)
        if entry.erase is not None:
            entry.erase(subject=subject, limit=size, progress=report)
        elif entry.subject_where:
            where = f"AND ({entry.subject_where})"
            params: dict = {"subject": subject.subject_id}
            if subject.before is not None:
                where += f" AND {entry.subject_before} < %(before)s"
                params["before"] = subject.before
            rows_delete(
                entry.table,
                tenant_id=subject.tenant_id,
                where=where,
                params=params,
                key=entry.key,
                limit=size,
                on_batch=report,
            )


# Plain tables go by ctid; partitioned ones by their key (a ctid is only unique per partition).
# `{where}` is a fixed fragment from code (a registration or a service), never client text.
_PLAIN_DELETE_SQL = (
    "DELETE FROM {table} WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM {table} WHERE tenant_id = %(tenant)s::uuid {where} LIMIT %(limit)s))"
)
_KEYED_DELETE_SQL = (
    "DELETE FROM {table} WHERE ({key}) IN ("
    "SELECT {key} FROM {table} WHERE tenant_id = %(tenant)s::uuid {where} LIMIT %(limit)s)"
)


def rows_delete(
    table: str,
    *,
    tenant_id: str,
    where: str = "",
    params: dict | None = None,
    key: tuple[str, ...] = (),
    limit: int = BATCH,
    on_batch: Progress | None = None,
) -> int:
    """Delete a tenant's rows of one table matching `where`, batch after batch; how many.

    Each batch is one statement in its own transaction in the tenant's scope.
    """
    if key:
        sql = _KEYED_DELETE_SQL.format(table=table, key=", ".join(key), where=where)
    else:
        sql = _PLAIN_DELETE_SQL.format(table=table, where=where)
    total = 0
    while True:
        with tenant_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(sql, {**(params or {}), "tenant": tenant_id, "limit": limit})
            n = cursor.rowcount
        total += n
        if on_batch is not None:
            on_batch(table, n)
        if n < limit:
            return total


_NO_SUBJECT = "holds nothing of a subject"


def register() -> None:
    """tenants' own entries (TenantsConfig.ready): everything it owns stays as tombstone or audit.

    What offboarding does to them runs before the deletes: the tenant suspended, its keys
    revoked, its sources disabled and every secret wiped (tenants services; docs/lifecycle.md).
    """
    tombstone = "tombstone: what the audit trail names, nothing usable (secrets wiped)"
    deletions_register(
        "tenants",
        Deletion("tenants_device", kept=tombstone, not_erased=_NO_SUBJECT),
        Deletion("tenants_signingkey", kept=tombstone, not_erased=_NO_SUBJECT),
        Deletion("tenants_webhooksource", kept=tombstone, not_erased=_NO_SUBJECT),
        Deletion(
            "tenants_auditlog",
            kept="audit: who did what to the tenant, offboarding included",
            not_erased="names a subject only by a keyed digest (events.erase), never its id",
        ),
        Deletion(
            "tenants_tenant",
            kept="tombstone: the tenant row itself, status offboarded",
            not_erased=_NO_SUBJECT,
        ),
    )
