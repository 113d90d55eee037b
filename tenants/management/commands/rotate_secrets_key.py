"""`rotate_secrets_key`: re-encrypt every stored secret with CODEX_SECRETS_KEY's first key."""

from __future__ import annotations

from django.core.management.base import CommandError

from codex.commands import DomainCommand, cli_actor
from tenants.crypto import SecretUndecryptable
from tenants.services.keys import secrets_key_rotate


class Command(DomainCommand):
    """Thin edge over tenants.services.keys.secrets_key_rotate."""

    help = (
        "Re-encrypt every stored signing secret with the first key of CODEX_SECRETS_KEY "
        "(idempotent, audited); afterwards the other keys can be removed."
    )

    def handle(self, *args, **options):
        try:
            result = secrets_key_rotate(actor=cli_actor())
        except SecretUndecryptable as exc:
            raise CommandError(
                f"{exc}: some secret was encrypted with a key no longer in CODEX_SECRETS_KEY "
                "(the log line names its key id); put that key back and run again"
            ) from exc
        self.stdout.write(
            f"{result.reencrypted} of {result.total} secret(s) re-encrypted with the first key; "
            "the others already were."
        )
