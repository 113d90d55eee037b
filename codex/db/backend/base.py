"""psycopg 3 backend: every new connection drops to the application role, with time limits."""

from django.db.backends.postgresql import base
from psycopg import sql

from codex.db.roles import owner_mode_active


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper, dropped to the restricted role unless in owner mode."""

    def init_connection_state(self):
        super().init_connection_state()
        role = self.settings_dict.get("APP_ROLE")
        if role and not owner_mode_active():
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
