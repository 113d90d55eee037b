"""psycopg 3 backend that issues SET ROLE to the application role on every new connection."""

from django.db.backends.postgresql import base
from psycopg import sql

from codex.db.roles import owner_mode_active


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper, dropped to the restricted role unless in owner mode."""

    def init_connection_state(self):
        super().init_connection_state()
        role = self.settings_dict.get("APP_ROLE")
        if role and not owner_mode_active():
            with self.connection.cursor() as cursor:
                cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
