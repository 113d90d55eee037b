"""`source_rotate_secret SOURCE_ID --secret NEW [--overlap 24h]`: the old one verifies a while."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor, duration_parse
from tenants.management.commands.source_add import read_secret
from tenants.services.sources import source_rotate_secret


class Command(DomainCommand):
    """Thin edge over tenants.services.sources.source_rotate_secret."""

    help = (
        "Make NEW the source's signing secret; the current one keeps verifying for --overlap "
        "(default 24h), while the platform switches over. Audited; no secret is printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("source_id")
        parser.add_argument("--secret", required=True, help="the new secret ('-': stdin)")
        parser.add_argument("--overlap", default="24h", help="e.g. 30m, 24h, 7d, 0s")

    def handle(self, *args, **options):
        until = source_rotate_secret(
            source_id=options["source_id"],
            secret=read_secret(options["secret"]),
            overlap=duration_parse(options["overlap"]),
            actor=cli_actor(),
        )
        self.stdout.write(
            f"Source {options['source_id']}: new secret in force; the previous one verifies "
            f"until {until:%Y-%m-%d %H:%M:%S} UTC."
        )
