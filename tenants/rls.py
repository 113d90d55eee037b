"""Row-level security for tenant-owned tables: one migration helper every app reuses.

    operations = [..., *rls.tenant_table("ingest_event")]

makes `tenant_id` lead the primary key, turns composite foreign keys into real constraints, and
enables + FORCES RLS with policies that fail closed when no tenant is set.
"""

from __future__ import annotations

from django.db import migrations

# The tenant a transaction works for, set by tenants.scope; NULL (no rows) when unset.
CURRENT_TENANT = "nullif((select current_setting('app.tenant_id', true)), '')::uuid"
# The explicit cross-tenant scope (admin, reconcile, sweeper, key lookup), set by system_scope.
SYSTEM_SCOPE = "coalesce((select current_setting('app.system_scope', true)), '') <> ''"


def policy_sql(table: str, column: str = "tenant_id") -> list[str]:
    """Enable and force RLS on `table`, with one fail-closed policy on `column`."""
    predicate = f"({column} = {CURRENT_TENANT} OR {SYSTEM_SCOPE})"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING {predicate} WITH CHECK {predicate}",
    ]


def tenant_table(
    table: str,
    *,
    composite_pk: bool = True,
    foreign_keys: tuple[tuple[str, str, str], ...] = (),
    column: str = "tenant_id",
) -> list[migrations.RunSQL]:
    """Migration operations that make `table` a proper tenant-owned table.

    composite_pk: replace Django's primary key (id) by (tenant_id, id), as Citus would need.
    foreign_keys: (column, referenced_table, on_delete) triples turned into composite
        (tenant_id, column) -> (tenant_id, id) constraints; declare those model fields with
        db_constraint=False, db_index=False so Django does not add single-column ones.
    """
    forward: list[str] = []
    backward: list[str] = []
    if composite_pk:
        forward += [
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({column}, id)",
        ]
        backward += [
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey",
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)",
        ]
    for fk_column, ref_table, on_delete in foreign_keys:
        name = f"{table}_{fk_column}_tfk"
        forward.append(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}, {fk_column}) "
            f"REFERENCES {ref_table} (tenant_id, id) ON DELETE {on_delete}"
        )
        forward.append(f"CREATE INDEX {table}_{fk_column}_tidx ON {table} ({column}, {fk_column})")
        backward.insert(0, f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        backward.insert(0, f"DROP INDEX IF EXISTS {table}_{fk_column}_tidx")
    forward += policy_sql(table, column)
    backward = [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        *backward,
    ]
    return [migrations.RunSQL(sql=forward, reverse_sql=backward)]


# --- data migrations ---------------------------------------------------------------------------


class MigrationDataLoss(RuntimeError):
    """A data migration read rows it did not write back: it stops before dropping anything."""


def migration_scope(cursor, reason: str) -> None:
    """Open the system scope for the rest of this migration's transaction.

    Forced row-level security applies to a managed database's owner (no superuser, no
    BYPASSRLS): without a scope every tenant table looks empty to a migration.
    """
    cursor.execute("SELECT set_config('app.system_scope', %s, true)", [f"migration:{reason}"])


def _scope_open(cursor) -> bool:
    cursor.execute(
        "SELECT coalesce(current_setting('app.system_scope', true), '') <> ''"
        " OR (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)"
    )
    return bool(cursor.fetchone()[0])


def table_digest(cursor, table: str, columns: str) -> dict[str, tuple[int, int]]:
    """Per tenant: (rows, checksum of `columns`) of `table`, as the current scope sees it."""
    cursor.execute(
        f"SELECT tenant_id::text, count(*), coalesce(sum(hashtextextended(ROW({columns})::text, 0)"
        f"::numeric), 0) FROM {table} GROUP BY tenant_id"
    )
    return {tenant: (int(rows), int(checksum)) for tenant, rows, checksum in cursor.fetchall()}


def rows_moved_check(
    cursor,
    *,
    source: str,
    target: str,
    columns: str,
    target_columns: str | None = None,
) -> int:
    """Raise MigrationDataLoss unless `target` holds exactly `source`'s rows; return the count.

    Compares row counts and a checksum per tenant over `columns` (named `target_columns` in the
    target). Refuses to vouch for anything read outside a system scope, where forced RLS would
    make both sides look equally empty.
    """
    if not _scope_open(cursor):
        raise MigrationDataLoss(
            f"{source} -> {target}: not in a system scope (rls.migration_scope): row-level "
            "security would hide the rows from this check"
        )
    before = table_digest(cursor, source, columns)
    after = table_digest(cursor, target, target_columns or columns)
    if before != after:
        lost = {
            tenant: (counts, after.get(tenant, (0, 0)))
            for tenant, counts in before.items()
            if after.get(tenant) != counts
        }
        extra = sorted(set(after) - set(before))
        raise MigrationDataLoss(
            f"{source} -> {target}: rows differ per tenant (source, target): {lost}"
            + (f"; tenants only in the target: {extra}" if extra else "")
        )
    return sum(rows for rows, _ in before.values())
