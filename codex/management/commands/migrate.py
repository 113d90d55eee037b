"""`migrate` as the database owner, then create/grant the restricted application role."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from codex.db import roles


class Command(DjangoMigrate):
    """Django's migrate, run in owner mode; ensures the app role exists and has its grants."""

    def handle(self, *args, **options):
        with roles.owner_mode():
            database = options.get("database") or "default"
            have_role = roles.ensure_app_role(database)
            result = super().handle(*args, **options)
            if have_role:
                roles.grant_app_role(database)
            else:
                self.stderr.write(
                    f"The application role {roles.app_role()!r} does not exist and this user "
                    "may not create it: run the SQL in README 'Managed databases', then migrate."
                )
        return result
