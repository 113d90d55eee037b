"""`provision_tenant SLUG`: a pilot tenant with its keys, devices and optional Stripe products."""

from __future__ import annotations

import json

import stripe
from django.core.management.base import BaseCommand, CommandError

from tenants.cli import cli_actor, logs_to_stderr
from tenants.errors import TenantError
from tenants.models import Tenant
from tenants.scope import system_scope
from tenants.services import billing
from tenants.services.tenants import ProvisionResult, tenant_provision


class Command(BaseCommand):
    """Thin edge over tenants.services.tenants.tenant_provision (and .billing for --stripe)."""

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
        with logs_to_stderr():
            return self._handle(options)

    def _handle(self, options) -> None:
        slug: str = options["slug"]
        stripe_doc = None
        if options["stripe"]:
            stripe_doc = self._stripe(slug, options["name"])
        try:
            result = tenant_provision(
                slug=slug, name=options["name"], devices=options["device"], actor=cli_actor()
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            doc = result.as_json()
            if stripe_doc is not None:
                doc["stripe"] = stripe_doc
            self.stdout.write(json.dumps(doc))
        else:
            self._print_human(result, stripe_doc)
        for note in result.notes:
            self.stderr.write(f"note: {note}")

    def _stripe(self, slug: str, name: str | None) -> dict:
        """Stripe first: a refused key or a Stripe failure leaves nothing created anywhere."""
        api_key, api_base = billing.stripe_config()
        if not api_key:
            message = "Stripe skipped: STRIPE_API_KEY is not set, so no products were created."
            self.stderr.write(message)
            return {"status": "skipped", "message": message, "products": []}
        try:
            billing.stripe_key_check(api_key)
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        with system_scope("provisioning"):
            existing = Tenant.objects.filter(slug=slug).values_list("name", flat=True).first()
        try:
            products = billing.stripe_products_provision(
                slug=slug, tenant_name=existing or name or slug, api_key=api_key, api_base=api_base
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        except stripe.StripeError as exc:
            raise CommandError(
                f"Stripe failed ({type(exc).__name__}: {exc.user_message or exc}); "
                "nothing was provisioned. Re-run when Stripe is reachable."
            ) from exc
        created = [p for p in products if p.created]
        return {
            "status": "created" if created else "exists",
            "message": f"Stripe test mode: {len(created)} product(s) created, "
            f"{len(products) - len(created)} already there.",
            "products": [
                {"id": p.product_id, "name": p.name, "created": p.created} for p in products
            ],
        }

    def _print_human(self, result: ProvisionResult, stripe_doc: dict | None) -> None:
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
        if stripe_doc is not None:
            out.write("")
            out.write(stripe_doc["message"])
            for product in stripe_doc["products"]:
                state = "created" if product["created"] else "exists"
                out.write(f"  {product['id']}: {product['name']} ({state})")
