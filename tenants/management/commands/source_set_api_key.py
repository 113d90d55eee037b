"""`source_set_api_key SOURCE_ID --api-key KEY`: the Stripe key reconcile lists events with."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor
from tenants.management.commands.source_add import read_secret
from tenants.services.sources import source_set_api_key


class Command(DomainCommand):
    """Thin edge over tenants.services.sources.source_set_api_key."""

    help = (
        "Store a stripe source's API key (encrypted; a restricted key that may read events is "
        "enough) for `reconcile --source stripe`. Audited; the key is never printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("source_id")
        parser.add_argument("--api-key", required=True, help="the key ('-': stdin)")

    def handle(self, *args, **options):
        source_set_api_key(
            source_id=options["source_id"],
            api_key=read_secret(options["api_key"]),
            actor=cli_actor(),
        )
        self.stdout.write(f"Source {options['source_id']}: API key stored.")
