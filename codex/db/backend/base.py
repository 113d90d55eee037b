"""psycopg 3 backend: every new connection drops to the application role, with time limits."""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from psycopg import sql

from codex.db.pooling import logs_in_as_app_role
from codex.db.roles import owner_mode_active


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper, dropped to the restricted role unless in owner mode."""

    def get_connection_params(self):
        params = super().get_connection_params()
        owner = self.settings_dict.get("OWNER")
        if owner_mode_active():
            if owner:
                # Same database name (the test database included), the owner's login.
                for key, param in (("USER", "user"), ("PASSWORD", "password")):
                    params.pop(param, None)
                    if owner[key]:
                        params[param] = owner[key]
                for key, param in (("HOST", "host"), ("PORT", "port")):
                    params.pop(param, None)
                    if owner[key]:
                        params[param] = owner[key]
                params.update(owner.get("OPTIONS") or {})
            elif logs_in_as_app_role(self.settings_dict):
                raise ImproperlyConfigured(
                    "owner mode (migrate, flush) needs DATABASE_OWNER_URL when DATABASE_URL "
                    "logs in as the application role"
                )
        return params

    def init_connection_state(self):
        super().init_connection_state()
        role = self.settings_dict.get("APP_ROLE")
        if not role or owner_mode_active() or logs_in_as_app_role(self.settings_dict):
            # Logged in as the app role (behind PgBouncer): nothing to switch, and no session
            # SETs, which a transaction pooler would leave on one server connection only; the
            # time limits are the role's defaults (roles.grant_app_role writes them).
            return
        limits = self.settings_dict.get("TIME_LIMITS_MS") or {}
        with self.connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            # A stuck or locked database answers 503 within seconds instead of hanging a
            # request (or a task) until gunicorn's 30 s timeout kills the worker. Session
            # settings: they hold for the connection's life, for the app role only
            # (migrations run in owner mode, without them).
            for name in ("statement_timeout", "lock_timeout"):
                if limits.get(name):
                    cursor.execute(
                        sql.SQL("SET {} = {}").format(
                            sql.Identifier(name), sql.Literal(int(limits[name]))
                        )
                    )
