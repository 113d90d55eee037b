"""`provision_tenant SLUG`: a pilot tenant with its keys, devices and optional Stripe products."""

from __future__ import annotations

import json

from codex.commands import DomainCommand, cli_actor
from tenants.services.billing import StripeOutcome, stripe_catalogue_provision
from tenants.services.tenants import ProvisionResult, tenant_provision


class Command(DomainCommand):
    """Thin edge over tenants.services.tenants.tenant_provision (and billing for --stripe)."""

    help = (
        "Create a tenant, its signing key and one device + key per --device; print the SDK "
        "settings. Re-running changes nothing but adds new devices."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="tenant slug: lower-case letters, digits and '-'")
        parser.add_argument("--name", help="display name (default: the slug)")
        parser.add_argument(
            "--device",
            action="append",
            default=[],
            metavar="NAME",
            help="create this device and a key for it (repeatable)",
        )
        parser.add_argument(
            "--stripe",
            action="store_true",
            help="also create the pilot's Stripe test-mode products (STRIPE_API_KEY=sk_test_...)",
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object on stdout, nothing else"
        )

    def handle(self, *args, **options):
        slug: str = options["slug"]
        stripe = None
        if options["stripe"]:
            stripe = stripe_catalogue_provision(slug=slug, name=options["name"])
            if stripe.status == "skipped":
                self.stderr.write(stripe.message)
        result = tenant_provision(
            slug=slug, name=options["name"], devices=options["device"], actor=cli_actor()
        )
        if options["json"]:
            doc = result.as_json()
            if stripe is not None:
                doc["stripe"] = stripe.as_json()
            self.stdout.write(json.dumps(doc))
        else:
            self._print_human(result, stripe)
        for note in result.notes:
            self.stderr.write(f"note: {note}")

    def _print_human(self, result: ProvisionResult, stripe: StripeOutcome | None) -> None:
        out = self.stdout
        if result.created:
            out.write(self.style.SUCCESS(f"Tenant {result.slug} created (id {result.tenant_id})."))
        elif result.devices_added:
            out.write(
                f"Tenant {result.slug} exists (id {result.tenant_id}); added device(s): "
                f"{', '.join(result.devices_added)}."
            )
        else:
            out.write(
                f"Tenant {result.slug} exists (id {result.tenant_id}); nothing created or changed."
            )
        for key in result.keys:
            owner = f"device {key.device}" if key.device else "tenant key (store systems)"
            out.write("")
            out.write(f"SDK settings for {owner}:")
            out.write(f"  base_url: {result.base_url}")
            out.write(f"  key_id:   {key.key_id}")
            if key.secret:
                out.write(f"  secret:   {key.secret}")
            else:
                out.write(
                    "  secret:   (shown only when the key was created; rotate to get a new one)"
                )
        if any(k.secret for k in result.keys):
            out.write("")
            out.write(
                self.style.WARNING(
                    "Secrets are shown once and are not stored in clear: save them now."
                )
            )
        if stripe is not None:
            out.write("")
            out.write(stripe.message)
            for product in stripe.products:
                state = "created" if product.created else "exists"
                out.write(f"  {product.product_id}: {product.name} ({state})")
