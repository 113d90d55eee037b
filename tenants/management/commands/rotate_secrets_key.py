"""`rotate_secrets_key`: re-encrypt every stored secret with CODEX_SECRETS_KEY's first key."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor
from tenants.services.keys import secrets_key_rotate


class Command(DomainCommand):
    """Thin edge over tenants.services.keys.secrets_key_rotate."""

    help = (
        "Re-encrypt every stored signing secret with the first key of CODEX_SECRETS_KEY "
        "(idempotent, audited); afterwards the other keys can be removed."
    )

    def handle(self, *args, **options):
        # SecretUndecryptable says which key to put back (DomainCommand shows it).
        result = secrets_key_rotate(actor=cli_actor())
        self.stdout.write(
            f"{result.reencrypted} of {result.total} secret(s) re-encrypted with the first key; "
            "the others already were."
        )
