"""`source_disable SOURCE_ID`: deliveries to the source get 410 from now on."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor
from tenants.services.sources import source_set_enabled


class Command(DomainCommand):
    """Thin edge over tenants.services.sources.source_set_enabled."""

    help = "Disable a webhook source: its deliveries are answered 410 (audited)."
    enabled = False

    def add_arguments(self, parser):
        parser.add_argument("source_id")

    def handle(self, *args, **options):
        changed = source_set_enabled(
            source_id=options["source_id"], enabled=self.enabled, actor=cli_actor()
        )
        state = "enabled" if self.enabled else "disabled"
        self.stdout.write(
            f"Source {options['source_id']} {state}."
            if changed
            else f"Source {options['source_id']} was already {state}; nothing changed."
        )
