"""provision_tenant --stripe against a local HTTP stand-in for the Stripe API (real library)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Tenant
from tenants.scope import system_scope
from tenants.services.billing import PILOT_CATALOGUE, product_id


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("provision_tenant", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _tenant_exists(slug: str) -> bool:
    with system_scope("test-check"):
        return Tenant.objects.filter(slug=slug).exists()


def test_stripe_test_key_creates_pilot_products_with_tenant_metadata(
    db, stripe_standin, monkeypatch
):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_standin")
    out, _ = _run("acme", "--name", "Acme", "--stripe", "--json")
    doc = json.loads(out)
    assert doc["stripe"]["status"] == "created"
    expected = {product_id("acme", p.code) for p in PILOT_CATALOGUE}
    assert set(stripe_standin.products) == expected
    assert {p["id"] for p in doc["stripe"]["products"]} == expected
    for item in PILOT_CATALOGUE:
        product = stripe_standin.products[product_id("acme", item.code)]
        assert product["metadata"] == {"codex_tenant": "acme", "codex_product": item.code}
        assert product["price"]["unit_amount"] == item.unit_amount
        assert product["price"]["interval"] == item.interval
        assert "Acme" in product["name"]
    creates = stripe_standin.creates()
    assert len(creates) == len(PILOT_CATALOGUE)
    assert all(r["authorization"] == "Bearer sk_test_standin" for r in stripe_standin.requests)
    assert all(r["idempotency_key"].startswith("codex-provision-") for r in creates)
    assert _tenant_exists("acme")


def test_stripe_rerun_creates_no_second_product(db, stripe_standin, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_standin")
    _run("acme", "--stripe")
    first_creates = len(stripe_standin.creates())
    out, _ = _run("acme", "--stripe")
    assert len(stripe_standin.creates()) == first_creates
    assert f"0 product(s) created, {len(PILOT_CATALOGUE)} already there" in out


def test_stripe_live_key_is_refused_before_anything_is_created(db, stripe_standin, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_realmoney")
    with pytest.raises(CommandError, match="live key"):
        _run("acme", "--device", "front", "--stripe", "--json")
    assert stripe_standin.requests == []
    assert not _tenant_exists("acme")


def test_stripe_unrecognised_key_is_refused(db, stripe_standin, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "pk_test_publishable")
    with pytest.raises(CommandError, match="not a Stripe test key"):
        _run("acme", "--stripe")
    assert stripe_standin.requests == []
    assert not _tenant_exists("acme")


def test_stripe_without_key_says_it_skipped_and_provisions_the_rest(db, stripe_standin):
    out, err = _run("acme", "--stripe", "--json")
    doc = json.loads(out)
    assert doc["stripe"]["status"] == "skipped"
    assert "Stripe skipped: STRIPE_API_KEY is not set" in err
    assert stripe_standin.requests == []
    assert _tenant_exists("acme")


def test_stripe_failure_aborts_before_the_tenant_is_created(db, stripe_standin, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_standin")
    monkeypatch.setenv("CODEX_STRIPE_API_BASE", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr("tenants.services.billing.MAX_NETWORK_RETRIES", 0)
    with pytest.raises(CommandError, match="Stripe failed"):
        _run("acme", "--stripe")
    assert not _tenant_exists("acme")
