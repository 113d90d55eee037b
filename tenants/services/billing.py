"""The pilot's Stripe test-mode products, created idempotently with the official stripe library.

Configuration (read here, only when `provision_tenant --stripe` asks for it):
  STRIPE_API_KEY          a test key (sk_test_... or rk_test_...); live keys are refused
  CODEX_STRIPE_API_BASE   optional API base URL (tests point it at a local stand-in server)

Each product gets a deterministic id (`codex_<slug>_<code>`), so a re-run finds it by id and
creates nothing; creates also carry an idempotency key, so a retried request is not doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings

from codex import env
from codex import error_codes as codes
from tenants.selectors import tenant_find

TEST_PREFIXES = ("sk_test_", "rk_test_")
LIVE_PREFIXES = ("sk_live_", "rk_live_")
MAX_NETWORK_RETRIES = 2


@dataclass(frozen=True)
class PilotProduct:
    """One product of the pilot catalogue, with its recurring price."""

    code: str
    name: str
    unit_amount: int  # minor units
    currency: str = "eur"
    interval: str = "month"


# The pilot's price list. Amounts are placeholders until sales fixes them; test mode only.
PILOT_CATALOGUE = (
    PilotProduct(code="platform", name="Codex Ingest pilot: platform", unit_amount=9900),
    PilotProduct(code="device", name="Codex Ingest pilot: per device", unit_amount=1500),
)


@dataclass(frozen=True)
class StripeProductReport:
    """A product of the catalogue and whether this run created it."""

    product_id: str
    name: str
    created: bool


def stripe_config() -> tuple[str | None, str | None]:
    """(api key, api base) from settings if set there, else from the environment."""
    api_key = getattr(settings, "STRIPE_API_KEY", None) or env.text("STRIPE_API_KEY")
    api_base = getattr(settings, "CODEX_STRIPE_API_BASE", None) or env.text("CODEX_STRIPE_API_BASE")
    return (api_key.strip() or None) if api_key else None, api_base or None


def stripe_key_check(api_key: str) -> None:
    """Accept a test-mode key; `tenant_error` for a live key or anything unrecognised."""
    if api_key.startswith(LIVE_PREFIXES):
        raise codes.TENANT_ERROR.error(
            "STRIPE_API_KEY is a live key: provisioning creates test-mode products only. "
            "Refusing; nothing was created. Use a sk_test_ key."
        )
    if not api_key.startswith(TEST_PREFIXES):
        raise codes.TENANT_ERROR.error(
            "STRIPE_API_KEY is not a Stripe test key (sk_test_... or rk_test_...); "
            "nothing was created."
        )


def product_id(slug: str, code: str) -> str:
    """The deterministic Stripe product id of a tenant's catalogue entry."""
    return f"codex_{slug.replace('-', '_')}_{code}"


def stripe_products_provision(
    *, slug: str, tenant_name: str, api_key: str, api_base: str | None = None
) -> tuple[StripeProductReport, ...]:
    """Make sure the tenant's pilot products exist in Stripe test mode; create the missing ones.

    Raises `tenant_error` for a non-test key and stripe.StripeError when Stripe fails.
    """
    stripe_key_check(api_key)
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        max_network_retries=MAX_NETWORK_RETRIES,
    )
    reports = []
    for item in PILOT_CATALOGUE:
        pid = product_id(slug, item.code)
        try:
            product = client.v1.products.retrieve(pid)
            reports.append(StripeProductReport(product_id=pid, name=product.name, created=False))
            continue
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
        params = {
            "id": pid,
            "name": f"{item.name} ({tenant_name})",
            "metadata": {"codex_tenant": slug, "codex_product": item.code},
            "default_price_data": {
                "currency": item.currency,
                "unit_amount": item.unit_amount,
                "recurring": {"interval": item.interval},
            },
        }
        try:
            product = client.v1.products.create(
                params=params, options={"idempotency_key": f"codex-provision-{pid}"}
            )
            created = True
        except stripe.InvalidRequestError as exc:
            # A concurrent run created it between our lookup and create: that is success.
            if exc.code != "resource_already_exists":
                raise
            product = client.v1.products.retrieve(pid)
            created = False
        reports.append(StripeProductReport(product_id=pid, name=product.name, created=created))
    return tuple(reports)


@dataclass(frozen=True)
class StripeOutcome:
    """What `provision_tenant --stripe` did in Stripe: skipped (no key), created or exists."""

    status: str
    message: str
    products: tuple[StripeProductReport, ...] = ()

    def as_json(self) -> dict:
        """The `stripe` member of `provision_tenant --json`."""
        return {
            "status": self.status,
            "message": self.message,
            "products": [
                {"id": p.product_id, "name": p.name, "created": p.created} for p in self.products
            ],
        }


def stripe_catalogue_provision(*, slug: str, name: str | None) -> StripeOutcome:
    """The tenant's pilot products in Stripe test mode, before the tenant itself is provisioned.

    Stripe first: a refused key (`tenant_error`) or a Stripe failure (`stripe_failed`) leaves
    nothing created anywhere. Without STRIPE_API_KEY nothing happens (status "skipped"). An
    existing tenant's name wins.
    """
    api_key, api_base = stripe_config()
    if not api_key:
        return StripeOutcome(
            "skipped", "Stripe skipped: STRIPE_API_KEY is not set, so no products were created."
        )
    stripe_key_check(api_key)
    existing = tenant_find(slug=slug)
    tenant_name = (existing.name if existing else None) or name or slug
    try:
        products = stripe_products_provision(
            slug=slug, tenant_name=tenant_name, api_key=api_key, api_base=api_base
        )
    except stripe.StripeError as exc:
        raise codes.STRIPE_FAILED.error(
            f"Stripe failed ({type(exc).__name__}: {exc.user_message or exc}); "
            "nothing was provisioned. Re-run when Stripe is reachable."
        ) from exc
    created = [p for p in products if p.created]
    return StripeOutcome(
        "created" if created else "exists",
        f"Stripe test mode: {len(created)} product(s) created, "
        f"{len(products) - len(created)} already there.",
        products,
    )
