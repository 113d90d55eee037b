"""`rotate_signing_key SLUG [--device NAME] [--overlap 24h]`: a new key; the old one fades out."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor, duration_parse
from tenants.selectors import device_get, tenant_get
from tenants.services.keys import signing_key_rotate


class Command(DomainCommand):
    """Thin edge over tenants.services.keys.signing_key_rotate."""

    help = (
        "Issue a new signing key for a tenant (or one of its devices) and print it once; the "
        "previous key keeps verifying for the overlap (default 24h; 0s stops it at once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--device", metavar="NAME", help="rotate this device's key")
        parser.add_argument(
            "--overlap",
            default="24h",
            help="how long the old key keeps verifying: 30m, 24h, 7d, 0s ... (default 24h)",
        )

    def handle(self, *args, **options):
        overlap = duration_parse(options["overlap"])
        tenant = tenant_get(slug=options["slug"])
        device = device_get(tenant=tenant, name=options["device"]) if options["device"] else None
        new = signing_key_rotate(tenant=tenant, device=device, overlap=overlap, actor=cli_actor())
        owner = f"device {new.device}" if new.device else "tenant key"
        self.stdout.write(f"New signing key for {tenant.slug} ({owner}):")
        self.stdout.write(f"  key_id: {new.key_id}")
        self.stdout.write(f"  secret: {new.secret}")
        self.stdout.write(
            f"The previous key keeps verifying for {options['overlap']}. "
            "This secret is shown once: save it now."
        )
