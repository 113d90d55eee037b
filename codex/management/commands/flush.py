"""`flush` as the database owner: TRUNCATE is never granted to the application role."""

from django.core.management.commands.flush import Command as DjangoFlush

from codex.db import roles


class Command(DjangoFlush):
    """Django's flush, run in owner mode (tests use it between transactional tests)."""

    def handle(self, *args, **options):
        with roles.owner_mode():
            return super().handle(*args, **options)
