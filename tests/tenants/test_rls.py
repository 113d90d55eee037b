"""Row-level security, exercised through the restricted application role."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tests.factories import (
    AuditLogFactory,
    DeviceFactory,
    SigningKeyFactory,
    TenantFactory,
)
from tests.helpers import assert_restricted_role, restricted_cursor, tenant_tables


def _seed():
    """Two tenants, each with a device, a tenant key, a device key and an audit row."""
    tenants = []
    for slug in ("alpha", "bravo"):
        tenant = TenantFactory(slug=slug)
        device = DeviceFactory(tenant=tenant, name="front")
        SigningKeyFactory(tenant=tenant)
        SigningKeyFactory(tenant=tenant, device=device)
        AuditLogFactory(tenant=tenant, action="test.seed", target=slug)
        tenants.append(tenant)
    AuditLogFactory(tenant=None, action="test.platform")
    return tenants


def _count(cursor, table: str, column: str, tenant_id) -> int:
    cursor.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
            sql.Identifier(table), sql.Identifier(column)
        ),
        [tenant_id],
    )
    return cursor.fetchone()[0]


def test_rls_tenant_scope_other_tenants_rows_are_invisible(db):
    with restricted_cursor():
        alpha, bravo = _seed()
        with tenant_scope(alpha.id), connection.cursor() as cursor:
            assert_restricted_role(cursor)
            for model in (Device, SigningKey, AuditLog):
                assert model.objects.filter(tenant_id=bravo.id).count() == 0, model
                assert model.objects.filter(tenant_id=alpha.id).count() > 0, model
            assert Tenant.objects.filter(id=bravo.id).count() == 0
            assert list(Tenant.objects.values_list("slug", flat=True)) == ["alpha"]
            # No filter in code at all: the policy alone hides bravo's rows.
            assert {d.tenant_id for d in Device.objects.all()} == {alpha.id}
            for table in tenant_tables(cursor):
                assert _count(cursor, table["table"], table["column"], bravo.id) == 0, table[
                    "table"
                ]


def test_rls_tenant_scope_insert_for_other_tenant_is_refused(db):
    with restricted_cursor() as app_cursor:
        alpha, bravo = _seed()
        with tenant_scope(alpha.id):
            assert_restricted_role(app_cursor)
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                Device.objects.create(tenant_id=bravo.id, name="intruder")
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                SigningKey.objects.create(tenant_id=bravo.id, key_id="ck_x", secret_encrypted="x")
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                Tenant.objects.create(slug="charlie", name="Charlie")
        with system_scope("test-check"):
            assert not Device.objects.filter(name="intruder").exists()
            assert not Tenant.objects.filter(slug="charlie").exists()


def test_rls_tenant_scope_update_of_other_tenants_rows_is_refused(db):
    with restricted_cursor() as app_cursor:
        alpha, bravo = _seed()
        with tenant_scope(alpha.id):
            assert_restricted_role(app_cursor)
            # bravo's rows cannot be targeted: they are not there for this transaction.
            assert Device.objects.filter(tenant_id=bravo.id).update(name="hijacked") == 0
            assert Device.objects.filter(tenant_id=bravo.id).delete()[0] == 0
            assert Tenant.objects.filter(id=bravo.id).update(status="suspended") == 0
            # Moving one of alpha's rows over to bravo fails the policy's WITH CHECK.
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                Device.objects.filter(tenant_id=alpha.id).update(tenant_id=bravo.id)
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                AuditLog.objects.filter(tenant_id=alpha.id).update(tenant_id=bravo.id)
        with system_scope("test-check"):
            assert Device.objects.get(tenant_id=bravo.id).name == "front"
            assert Tenant.objects.get(id=bravo.id).status == Tenant.Status.ACTIVE
            assert Device.objects.filter(tenant_id=alpha.id).count() == 1


def test_rls_no_scope_every_tenant_table_returns_zero_rows_though_rows_exist(db, owner_connection):
    _seed()
    with owner_connection.cursor() as owner:
        owner.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        owner_bypasses = owner.fetchone()[0]
        owner.execute("SHOW app.system_scope")
        owner_scope = owner.fetchone()[0]
        tables = tenant_tables(owner)
        existing = {}
        for t in tables:
            owner.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t["table"])))
            existing[t["table"]] = owner.fetchone()[0]
    # The owner (no superuser, no BYPASSRLS: as on a managed database) sees the seeded rows
    # only through its named system scope.
    assert not owner_bypasses
    assert owner_scope == "tests-owner"
    for table in ("tenants_tenant", "tenants_device", "tenants_signingkey", "tenants_auditlog"):
        assert existing[table] >= 2, table
    with connection.cursor() as cursor:
        assert_restricted_role(cursor)
        for t in tables:
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t["table"])))
            assert cursor.fetchone()[0] == 0, f"{t['table']} leaks rows without a scope"
    assert Tenant.objects.count() == 0
    assert Device.objects.count() == 0
    assert SigningKey.objects.count() == 0


def test_rls_no_scope_insert_is_refused(db):
    with restricted_cursor():
        alpha, _ = _seed()
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Device.objects.create(tenant_id=alpha.id, name="unscoped")


def test_rls_scope_is_transaction_local_and_does_not_leak(db):
    with restricted_cursor() as app_cursor:
        alpha, _ = _seed()
        with tenant_scope(alpha.id):
            assert Device.objects.count() == 1
            with system_scope("test-nested"):
                assert Device.objects.count() == 2
            # The inner system scope is gone again once it closes.
            assert Device.objects.count() == 1
        app_cursor.execute(
            "SELECT current_setting('app.tenant_id', true),"
            " current_setting('app.system_scope', true)"
        )
        assert app_cursor.fetchone() in {("", ""), (None, None)}
        assert Device.objects.count() == 0
