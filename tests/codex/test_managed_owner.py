"""The suite runs as a managed database's owner: no SUPERUSER, no BYPASSRLS (as deployed)."""

from __future__ import annotations

import pytest
from django.db import connection

from codex.db import bootstrap
from tests.dbutil import owner_connect
from tests.factories import TenantFactory


def test_the_owner_that_migrates_and_runs_jobs_is_no_superuser_and_no_rls_bypass(db):
    with owner_connect(autocommit=True) as owner:
        row = owner.execute(
            "SELECT session_user::text, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole"
            " FROM pg_roles WHERE rolname = session_user"
        ).fetchone()
        assert not bootstrap.login_is_privileged(owner)
        owns = owner.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'ingest_event'"
        ).fetchone()[0]
    name, superuser, bypassrls, createdb, createrole = row
    assert (superuser, bypassrls) == (False, False), f"{name} would bypass row-level security"
    assert (createdb, createrole) == (True, True)  # what a managed provider's owner has
    assert owns == name  # the login that migrated owns the tables
    # The service's own connections log in as that same owner, then drop to the app role.
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user::text, current_user::text")
        assert cursor.fetchone()[0] in (name, connection.settings_dict["APP_ROLE"])


def test_forced_rls_hides_every_row_from_the_owner_outside_a_scope(transactional_db):
    TenantFactory()
    with owner_connect(autocommit=True) as owner:
        assert owner.execute("SELECT count(*) FROM tenants_tenant").fetchone()[0] >= 1
        owner.execute("SET app.system_scope = ''")  # what a migration without a scope sees
        assert owner.execute("SELECT count(*) FROM tenants_tenant").fetchone()[0] == 0


def test_bootstrap_refuses_to_reshape_the_administrator_or_hand_over_a_system_database(db):
    with owner_connect(autocommit=True) as admin:
        me = admin.info.user
        with pytest.raises(ValueError, match="refusing to reshape"):
            bootstrap.managed_owner_ensure(admin, owner=me, database="codex_never_made")
        with pytest.raises(ValueError, match="system database"):
            bootstrap.managed_owner_ensure(admin, owner="codex_never_made", database="postgres")
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'codex_never_made'"
        ).fetchone() == (0,)
