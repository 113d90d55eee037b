"""Database settings for PgBouncer: transaction pooling is only accepted in its safe shape."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from codex.db.pooling import database_settings, logs_in_as_app_role
from codex.env import database_config

OWNER = database_config("postgresql://codex:pw@db.internal:5432/codex")


def _settings(url: str, pool_mode: str, owner=OWNER) -> dict:
    return database_settings(
        database_config(url), app_role="codex_app", pool_mode=pool_mode, owner=owner
    )


def test_transaction_pooling_with_the_owner_login_is_refused():
    # SET ROLE on connect would switch one pooled server connection and leave the owner on others.
    with pytest.raises(ImproperlyConfigured, match="log in as the application role"):
        _settings("postgresql://codex:pw@pgbouncer:6432/codex", "transaction")


def test_transaction_pooling_with_prepared_statements_switched_on_is_refused():
    with pytest.raises(ImproperlyConfigured, match="prepare_threshold"):
        _settings(
            "postgresql://codex_app:pw@pgbouncer:6432/codex?prepare_threshold=5", "transaction"
        )


def test_transaction_pooling_as_the_app_role_disables_server_side_cursors_and_keeps_the_owner():
    db = _settings("postgresql://codex_app:pw@pgbouncer:6432/codex", "transaction")
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert logs_in_as_app_role(db)
    assert (db["OWNER"]["USER"], db["OWNER"]["HOST"], db["OWNER"]["PORT"]) == (
        "codex",
        "db.internal",
        "5432",
    )


def test_unknown_pool_mode_is_refused():
    with pytest.raises(ImproperlyConfigured, match="CODEX_DB_POOL_MODE"):
        _settings("postgresql://codex:pw@db:5432/codex", "statement")


def test_session_mode_keeps_the_owner_login_and_set_role():
    db = _settings("postgresql://codex:pw@db:5432/codex", "session", owner=None)
    assert not logs_in_as_app_role(db)
    assert "OWNER" not in db
    assert not db.get("DISABLE_SERVER_SIDE_CURSORS")


def test_owner_mode_without_an_owner_url_is_refused_when_logged_in_as_the_app_role():
    from codex.db import roles
    from codex.db.backend.base import DatabaseWrapper

    db = _settings("postgresql://codex_app:pw@pgbouncer:6432/codex", "transaction", owner=None)
    wrapper = DatabaseWrapper({**db, "TIME_ZONE": None, "CONN_HEALTH_CHECKS": False}, "probe")
    with roles.owner_mode(), pytest.raises(ImproperlyConfigured, match="DATABASE_OWNER_URL"):
        wrapper.get_connection_params()
