"""The schema catalogue: every tenant table has forced RLS, a fail-closed policy, tenant-led keys.

pytest-django builds the test database with every app's migrations before any test runs, so this
walks ingest, flags and reconcile tables too, as they land: a new table without RLS fails here.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from tests.helpers import assert_restricted_role, restricted_cursor, tenant_tables


def _policies(cursor, oid) -> list[tuple]:
    cursor.execute(
        "SELECT polname, polpermissive, pg_get_expr(polqual, polrelid), "
        "pg_get_expr(polwithcheck, polrelid) FROM pg_policy WHERE polrelid = %s",
        [oid],
    )
    return cursor.fetchall()


def _indexes(cursor, oid) -> list[tuple]:
    cursor.execute(
        "SELECT indexrelid::regclass::text, indisprimary, indisunique, indkey[0] "
        "FROM pg_index WHERE indrelid = %s",
        [oid],
    )
    return cursor.fetchall()


def catalogue_problems(cursor) -> list[str]:
    """Every way a tenant table falls short of the RLS rules (empty list: all good)."""
    problems: list[str] = []
    for t in tenant_tables(cursor):
        name = t["table"]
        if not (t["rls"] and t["forced"]):
            problems.append(f"{name}: RLS enabled={t['rls']} forced={t['forced']}")
        policies = _policies(cursor, t["oid"])
        if not policies:
            problems.append(f"{name}: no policy")
        for polname, permissive, qual, check in policies:
            # A permissive policy that does not test the tenant setting would open the table.
            if permissive and "app.tenant_id" not in (qual or ""):
                problems.append(f"{name}: policy {polname} does not check app.tenant_id")
            if permissive and check is not None and "app.tenant_id" not in check:
                problems.append(f"{name}: policy {polname} WITH CHECK skips app.tenant_id")
        if name == "tenants_tenant" or not t["notnull"]:
            # The tenant table is keyed by its id; nullable-tenant tables (platform-wide audit
            # rows) cannot be distributed by tenant and keep ordinary keys.
            continue
        indexes = _indexes(cursor, t["oid"])
        if not any(primary for _, primary, _, _ in indexes):
            problems.append(f"{name}: no primary key")
        for index, primary, unique, first in indexes:
            if first != t["attnum"]:
                kind = "primary key" if primary else "unique index" if unique else "index"
                problems.append(f"{name}: {kind} {index} does not lead with tenant_id")
    return problems


def test_catalogue_every_tenant_table_has_forced_rls_and_tenant_led_keys(db):
    with restricted_cursor() as app_cursor:
        names = {t["table"] for t in tenant_tables(app_cursor)}
        assert {
            "tenants_tenant",
            "tenants_device",
            "tenants_signingkey",
            "tenants_auditlog",
        } <= names
        problems = catalogue_problems(app_cursor)
        assert not problems, "\n".join(problems)


def test_catalogue_check_flags_a_table_without_rls_or_tenant_led_keys(db):
    with restricted_cursor() as cursor:
        # Only this test's transaction (rolled back afterwards) works as the owner, to create a
        # table the wrong way and prove the check above would fail the build on it.
        cursor.execute("SET LOCAL ROLE NONE")
        try:
            cursor.execute(
                "CREATE TABLE zz_unsafe (id bigint PRIMARY KEY, tenant_id uuid NOT NULL)"
            )
            cursor.execute("CREATE INDEX zz_unsafe_tenant ON zz_unsafe (tenant_id)")
            cursor.execute(
                "CREATE TABLE zz_open"
                " (tenant_id uuid NOT NULL, id bigint, PRIMARY KEY (tenant_id, id))"
            )
            cursor.execute("ALTER TABLE zz_open ENABLE ROW LEVEL SECURITY")
            cursor.execute("ALTER TABLE zz_open FORCE ROW LEVEL SECURITY")
            cursor.execute("CREATE POLICY anything ON zz_open USING (true)")
            problems = catalogue_problems(cursor)
        finally:
            cursor.execute(
                sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.CODEX_DB_APP_ROLE))
            )
        assert_restricted_role(cursor)
        assert "zz_unsafe: RLS enabled=False forced=False" in problems
        assert "zz_unsafe: no policy" in problems
        assert "zz_unsafe: primary key zz_unsafe_pkey does not lead with tenant_id" in problems
        assert not any("zz_unsafe_tenant" in p for p in problems)
        assert "zz_open: policy anything does not check app.tenant_id" in problems


def test_catalogue_app_role_owns_nothing_and_has_dml_only(db):
    with restricted_cursor() as cursor:
        role = settings.CODEX_DB_APP_ROLE
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == role
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = %s",
            [role],
        )
        assert cursor.fetchone() == (False, False, False, False)
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = %s",
            [role],
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT c.relname, p.priv FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN unnest(array['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(priv) "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
            "AND has_table_privilege(%s, c.oid, p.priv)",
            [role],
        )
        assert cursor.fetchall() == []
        cursor.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [role])
        create_in_public = cursor.fetchone()[0]
        # PostgreSQL < 15 grants CREATE on public to everyone; the role still owns nothing.
        cursor.execute("SHOW server_version_num")
        if int(cursor.fetchone()[0]) >= 150000:
            assert not create_in_public


def test_catalogue_app_role_truncate_is_refused(db):
    with restricted_cursor():
        for table in ("tenants_signingkey", "tenants_tenant"):
            with (
                pytest.raises(DatabaseError, match="permission denied"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(f"TRUNCATE {table}")


def test_catalogue_covers_every_partition_of_a_partitioned_tenant_table(db):
    with restricted_cursor() as cursor:
        cursor.execute(
            "SELECT p.relname, c.relname FROM pg_inherits i "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE p.relkind = 'p' ORDER BY 1, 2"
        )
        children = cursor.fetchall()
        parents = {parent for parent, _ in children}
        assert {"ingest_event", "events_enriched"} <= parents
        checked = {t["table"] for t in tenant_tables(cursor)}
        for parent, child in children:
            assert child in checked, f"{child} (partition of {parent}) escapes the catalogue"
        assert {"ingest_event_default", "events_enriched_default"} <= checked
        problems = catalogue_problems(cursor)
        assert not problems, "\n".join(problems)


def test_catalogue_check_flags_a_partition_created_without_its_policy(db):
    with restricted_cursor() as cursor:
        cursor.execute("SET LOCAL ROLE NONE")  # the owner, in this rolled-back transaction only
        try:
            cursor.execute(
                "CREATE TABLE zz_bare PARTITION OF ingest_event "
                "FOR VALUES FROM ('2090-01-01') TO ('2090-02-01')"
            )
            problems = catalogue_problems(cursor)
        finally:
            cursor.execute(
                sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.CODEX_DB_APP_ROLE))
            )
        assert "zz_bare: RLS enabled=False forced=False" in problems
        assert "zz_bare: no policy" in problems
