"""`source_add TENANT --kind shopify|stripe|standard --secret SECRET [--json]`: a webhook source."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from tenants.cli import cli_actor, logs_to_stderr
from tenants.errors import TenantError
from tenants.models import WebhookSource
from tenants.selectors import tenant_get
from tenants.sources import SourceError, source_create


def read_secret(value: str) -> str:
    """The secret itself, or (for "-") the first line of stdin, so it stays out of `ps`."""
    return sys.stdin.readline().strip() if value == "-" else value


class Command(BaseCommand):
    """Thin edge over tenants.sources.source_create."""

    help = (
        "Create a webhook source for a tenant and print its id, path, URL (under "
        "CODEX_PUBLIC_URL) and kind; --secret is the platform's signing secret ('-': stdin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--kind", required=True, choices=WebhookSource.Kind.values)
        parser.add_argument("--secret", required=True, help="the platform's signing secret")
        parser.add_argument(
            "--type-field", default="type", help="standard: the body field naming the type"
        )
        parser.add_argument("--api-key", default="", help="stripe: API key reconcile reads with")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        with logs_to_stderr():
            try:
                tenant = tenant_get(slug=options["tenant"])
                info = source_create(
                    tenant=tenant,
                    kind=options["kind"],
                    secret=read_secret(options["secret"]),
                    type_field=options["type_field"],
                    api_key=read_secret(options["api_key"]) if options["api_key"] else "",
                    actor=cli_actor(),
                )
            except (TenantError, SourceError) as exc:
                raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(info.as_json()))
            return
        self.stdout.write(f"source_id: {info.source_id}")
        self.stdout.write(f"path:      {info.path}")
        self.stdout.write(f"url:       {info.url}")
        self.stdout.write(f"kind:      {info.kind}")
