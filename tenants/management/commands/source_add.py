"""`source_add TENANT --kind shopify|stripe|standard --secret SECRET [--json]`: a webhook source."""

from __future__ import annotations

import json
import sys

from codex.commands import DomainCommand, cli_actor
from tenants.models import WebhookSource
from tenants.selectors import tenant_get
from tenants.services.sources import source_create


def read_secret(value: str) -> str:
    """The secret itself, or (for "-") the first line of stdin, so it stays out of `ps`."""
    return sys.stdin.readline().strip() if value == "-" else value


class Command(DomainCommand):
    """Thin edge over tenants.services.sources.source_create."""

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
        parser.add_argument(
            "--subject-field",
            default="",
            help="standard: the body field (dotted path, e.g. customer.id) naming the subject",
        )
        parser.add_argument("--api-key", default="", help="stripe: API key reconcile reads with")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        tenant = tenant_get(slug=options["tenant"])
        info = source_create(
            tenant=tenant,
            kind=options["kind"],
            secret=read_secret(options["secret"]),
            type_field=options["type_field"],
            subject_field=options["subject_field"],
            api_key=read_secret(options["api_key"]) if options["api_key"] else "",
            actor=cli_actor(),
        )
        if options["json"]:
            self.stdout.write(json.dumps(info.as_json()))
            return
        self.stdout.write(f"source_id: {info.source_id}")
        self.stdout.write(f"path:      {info.path}")
        self.stdout.write(f"url:       {info.url}")
        self.stdout.write(f"kind:      {info.kind}")
