"""Database settings for running behind a transaction-pooling PgBouncer (docs/configuration.md).

Under transaction pooling each transaction may run on a different server connection, and whatever
a client leaves in a server session (SET ROLE, SET statement_timeout, set_config(..., false)) stays
there for the next client. The service therefore keeps no session state when pooled: it logs in as
the application role itself (so every server connection is that role from its start, no SET ROLE),
its time limits are the role's defaults (ALTER ROLE .. SET, written by migrate), tenant scopes are
transaction-local as always, and migrations use a separate owner login (DATABASE_OWNER_URL).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

POOL_MODES = ("session", "transaction")


def database_settings(db: dict, *, app_role: str, pool_mode: str, owner: dict | None) -> dict:
    """The DATABASES entry for `db` (from DATABASE_URL), checked for `pool_mode`.

    `owner` is the parsed DATABASE_OWNER_URL (credentials for owner mode), or None.
    """
    if pool_mode not in POOL_MODES:
        raise ImproperlyConfigured(
            f"CODEX_DB_POOL_MODE must be one of {', '.join(POOL_MODES)}, not {pool_mode!r}"
        )
    db = {**db, "APP_ROLE": app_role, "POOL_MODE": pool_mode}
    if owner is not None:
        db["OWNER"] = {key: owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")}
    if pool_mode == "transaction":
        if db["USER"] != app_role:
            # SET ROLE on connect would change one pooled server connection and leave the owner
            # (who bypasses RLS as a superuser or table owner) on the others.
            raise ImproperlyConfigured(
                "CODEX_DB_POOL_MODE=transaction needs DATABASE_URL to log in as the application "
                f"role {app_role!r} (not {db['USER'] or 'the default user'!r}); put the owner "
                "in DATABASE_OWNER_URL for migrations"
            )
        # Django's .iterator() would DECLARE .. WITH HOLD cursors that outlive the transaction,
        # i.e. live in a server session the next transaction may not get.
        db["DISABLE_SERVER_SIDE_CURSORS"] = True
        # psycopg 3 prepares statements server-side after `prepare_threshold` runs; a prepared
        # statement lives in one server session. Django passes None (never prepare) unless
        # OPTIONS says otherwise; refuse a URL that turns it on (PgBouncer 1.18 cannot track it).
        if db["OPTIONS"].get("prepare_threshold") not in (None, "", "None"):
            raise ImproperlyConfigured(
                "CODEX_DB_POOL_MODE=transaction: remove prepare_threshold from DATABASE_URL "
                "(server-side prepared statements do not survive transaction pooling)"
            )
        db["OPTIONS"] = {k: v for k, v in db["OPTIONS"].items() if k != "prepare_threshold"}
    return db


def logs_in_as_app_role(settings_dict: dict) -> bool:
    """True when the login itself is the application role (no SET ROLE, no session SETs)."""
    role = settings_dict.get("APP_ROLE")
    return bool(role) and settings_dict.get("USER") == role
