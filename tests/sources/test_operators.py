"""Operators: the source_* commands and the admin, each write audited behind its own permission."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tenants import crypto
from tenants.models import AuditLog, WebhookSource
from tenants.scope import system_scope
from tenants.services.keys import secrets_key_rotate
from tests.factories import TenantFactory, WebhookSourceFactory
from tests.helpers import SHOPIFY_SECRET, STRIPE_SECRET, staff_client

NEW_SECRET = "shpss_rotated_" + "0123456789abcdef" * 2


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _source(source_id: str) -> WebhookSource:
    with system_scope("test"):
        return WebhookSource.objects.get(source_id=source_id)


def _audit(action: str) -> list[AuditLog]:
    with system_scope("test"):
        return list(AuditLog.objects.filter(action=action).order_by("at"))


def test_source_add_json_prints_exactly_id_path_url_kind(db, settings):
    settings.CODEX_PUBLIC_URL = "https://ingest.example.com"
    tenant = TenantFactory(slug="acme")
    doc = json.loads(
        _run("source_add", "acme", "--kind", "shopify", "--secret", SHOPIFY_SECRET, "--json")
    )
    assert set(doc) == {"source_id", "path", "url", "kind"}
    assert re.fullmatch(rf"src_{tenant.id.hex}_[0-9a-f]{{24}}", doc["source_id"])
    assert doc["path"] == f"/v1/sources/{doc['source_id']}/webhooks"
    assert doc["url"] == "https://ingest.example.com" + doc["path"]
    assert doc["kind"] == "shopify"
    row = _source(doc["source_id"])
    assert SHOPIFY_SECRET not in row.secret_encrypted
    assert crypto.decrypt(row.secret_encrypted) == SHOPIFY_SECRET
    [audit] = _audit("source.create")
    assert audit.target == doc["source_id"]
    assert SHOPIFY_SECRET not in json.dumps([audit.old, audit.new])


def test_source_add_text_output_and_refusals(db):
    TenantFactory(slug="acme")
    out = _run("source_add", "acme", "--kind", "stripe", "--secret", STRIPE_SECRET)
    assert "source_id:" in out
    assert "/v1/sources/" in out
    assert "kind:      stripe" in out
    assert STRIPE_SECRET not in out
    with pytest.raises(CommandError, match="no tenant"):
        _run("source_add", "nope", "--kind", "stripe", "--secret", "x")
    with pytest.raises(CommandError, match="Standard Webhooks secret"):
        _run("source_add", "acme", "--kind", "standard", "--secret", "not base64!")
    with pytest.raises(CommandError, match="only a stripe source"):
        _run(
            "source_add",
            *("acme", "--kind", "shopify", "--secret", SHOPIFY_SECRET, "--api-key", "rk_test_1"),
        )


def test_disable_enable_and_rotate_commands_are_audited(db):
    tenant = TenantFactory(slug="acme")
    info = WebhookSourceFactory(tenant=tenant, kind="shopify", secret=SHOPIFY_SECRET, actor="t")
    assert "disabled" in _run("source_disable", info.source_id)
    assert not _source(info.source_id).enabled
    assert "already disabled" in _run("source_disable", info.source_id)
    assert "enabled" in _run("source_enable", info.source_id)
    assert _source(info.source_id).enabled
    out = _run("source_rotate_secret", info.source_id, "--secret", NEW_SECRET, "--overlap", "2h")
    assert "previous one verifies until" in out
    assert NEW_SECRET not in out
    row = _source(info.source_id)
    assert crypto.decrypt(row.secret_encrypted) == NEW_SECRET
    assert crypto.decrypt(row.previous_secret_encrypted) == SHOPIFY_SECRET
    assert [a.new for a in _audit("source.disable")] == [{"enabled": False}]
    assert [a.new for a in _audit("source.enable")] == [{"enabled": True}]
    [rotation] = _audit("source.rotate_secret")
    assert rotation.new["overlap_seconds"] == 7200
    assert rotation.actor.startswith("cli:")
    with pytest.raises(CommandError, match="no source"):
        _run("source_disable", "src_nope")


def test_rotate_secrets_key_re_encrypts_source_secrets_and_api_keys(db, settings):
    from cryptography.fernet import Fernet

    tenant = TenantFactory(slug="acme")
    info = WebhookSourceFactory(
        tenant=tenant, kind="stripe", secret=STRIPE_SECRET, api_key="rk_test_key", actor="t"
    )
    old_token = _source(info.source_id).secret_encrypted
    settings.CODEX_SECRETS_KEY = f"{Fernet.generate_key().decode()},{settings.CODEX_SECRETS_KEY}"
    result = secrets_key_rotate(actor="t")
    assert result.reencrypted >= 2
    row = _source(info.source_id)
    assert row.secret_encrypted != old_token
    settings.CODEX_SECRETS_KEY = settings.CODEX_SECRETS_KEY.split(",")[0]  # only the new key
    assert crypto.decrypt(row.secret_encrypted) == STRIPE_SECRET
    assert crypto.decrypt(row.api_key_encrypted) == "rk_test_key"


# --- admin --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    """A tenant and its Shopify source (as source_create answered)."""

    tenant: object
    info: object


@pytest.fixture
def shop(db):
    tenant = TenantFactory(slug="acme")
    info = WebhookSourceFactory(tenant=tenant, kind="shopify", secret=SHOPIFY_SECRET, actor="t")
    return Shop(tenant=tenant, info=info)


def _changelist_action(client, action: str, source_id: str):
    row = _source(source_id)
    return client.post(
        reverse("admin:tenants_webhooksource_changelist"),
        {"action": action, "_selected_action": [row.pk]},
    )


def test_admin_staff_without_permissions_cannot_add_disable_or_rotate(shop):
    info = shop.info
    client = staff_client("tenants.view_webhooksource", "tenants.view_tenant")
    listing = client.get(reverse("admin:tenants_webhooksource_changelist"))
    assert listing.status_code == 200
    assert info.source_id.encode() in listing.content
    assert b"disable_sources" not in listing.content
    assert client.get(reverse("admin:tenants_webhooksource_add")).status_code == 403
    _changelist_action(client, "disable_sources", info.source_id)
    assert _source(info.source_id).enabled
    pk = _source(info.source_id).pk
    rotate = reverse("admin:tenants_webhooksource_rotate", args=[pk])
    assert client.get(rotate).status_code == 403
    assert client.post(rotate, {"secret": "evil", "overlap": "0s"}).status_code == 403
    assert crypto.decrypt(_source(info.source_id).secret_encrypted) == SHOPIFY_SECRET
    assert _audit("source.disable") == []
    assert _audit("source.rotate_secret") == []


def test_admin_disable_permission_is_enough_to_disable_and_enable(shop):
    info = shop.info
    client = staff_client("tenants.view_webhooksource", "tenants.disable_webhooksource")
    _changelist_action(client, "disable_sources", info.source_id)
    assert not _source(info.source_id).enabled
    _changelist_action(client, "enable_sources", info.source_id)
    assert _source(info.source_id).enabled
    [audit] = _audit("source.disable")
    assert audit.actor_user is not None


def test_admin_rotate_with_its_permission_never_shows_a_secret(shop):
    info = shop.info
    client = staff_client("tenants.view_webhooksource", "tenants.rotate_webhooksource_secret")
    pk = _source(info.source_id).pk
    rotate = reverse("admin:tenants_webhooksource_rotate", args=[pk])
    page = client.get(rotate)
    assert page.status_code == 200
    assert SHOPIFY_SECRET.encode() not in page.content
    response = client.post(rotate, {"secret": NEW_SECRET, "overlap": "1h"}, follow=True)
    assert response.status_code == 200
    assert NEW_SECRET.encode() not in response.content
    assert SHOPIFY_SECRET.encode() not in response.content
    assert crypto.decrypt(_source(info.source_id).secret_encrypted) == NEW_SECRET
    assert len(_audit("source.rotate_secret")) == 1
    change = client.get(reverse("admin:tenants_webhooksource_change", args=[pk]))
    assert change.status_code == 200
    assert NEW_SECRET.encode() not in change.content


def test_admin_add_needs_the_add_permission_and_creates_an_audited_source(shop):
    tenant = shop.tenant
    client = staff_client("tenants.view_webhooksource", "tenants.add_webhooksource")
    response = client.post(
        reverse("admin:tenants_webhooksource_add"),
        {"tenant": tenant.pk, "kind": "stripe", "secret": STRIPE_SECRET, "type_field": "type"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"/v1/sources/src_" in response.content
    assert STRIPE_SECRET.encode() not in response.content
    with system_scope("test"):
        assert WebhookSource.objects.filter(kind="stripe").count() == 1
    assert len(_audit("source.create")) == 2


def test_tenant_admin_page_lists_its_sources_with_last_received_and_counts(shop):
    tenant, info = shop.tenant, shop.info
    client = staff_client(superuser=True)
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert info.source_id in content
    assert "last received at" in content.lower()
    assert "accepted count" in content.lower()
    assert SHOPIFY_SECRET not in content


def test_admin_add_with_a_bad_standard_secret_is_a_form_error_not_a_500(shop):
    tenant = shop.tenant
    client = staff_client("tenants.view_webhooksource", "tenants.add_webhooksource")
    response = client.post(
        reverse("admin:tenants_webhooksource_add"),
        {"tenant": tenant.pk, "kind": "standard", "secret": "not base64!", "type_field": "type"},
    )
    assert response.status_code == 200
    assert b"Standard Webhooks secret" in response.content
    with system_scope("test"):
        assert not WebhookSource.objects.filter(kind="standard").exists()
