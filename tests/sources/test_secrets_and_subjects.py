"""Bad secrets and overlaps get clear errors everywhere; Standard sources can map a subject."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from ingest.models import Event
from tenants import crypto
from tenants.models import WebhookSource
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory, WebhookSourceFactory
from tests.helpers import SHOPIFY_SECRET, STANDARD_SECRET, staff_client
from tests.sources.webhook_signing import encode, standard_headers

BAD_SECRETS = [
    ("standard", "whsec_", "Standard Webhooks secret"),  # empty key: every delivery was a 500
    ("standard", "whsec_AA==", "this one is 1 bytes"),  # one byte
    ("standard", "whsec_" + "QUJD" * 4, "this one is 12 bytes"),
    ("standard", "whsec_" + "QUJD" * 30, "this one is 90 bytes"),
    ("standard", "whsec_not base64!", "not valid base64"),
    ("stripe", "whsec_", "Stripe signing secret"),
    ("stripe", "whsec_short", "Stripe signing secret"),
    ("stripe", "sk_live_0123456789abcdef0123", "Stripe signing secret"),
    ("shopify", "short", "Shopify secret is at least 32"),
]


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _sources(kind: str) -> list[WebhookSource]:
    with system_scope("test"):
        return list(WebhookSource.objects.filter(kind=kind))


@pytest.mark.parametrize(("kind", "secret", "message"), BAD_SECRETS)
def test_source_add_refuses_weak_or_malformed_secrets_with_a_clear_message(
    db, kind, secret, message
):
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match=message) as refused:
        _run("source_add", "acme", "--kind", kind, "--secret", secret)
    value = secret.removeprefix("whsec_")
    assert not value or value not in str(refused.value)  # the message never echoes the secret
    assert _sources(kind) == []


@pytest.mark.parametrize(
    "secret",
    [STANDARD_SECRET, "whsec_" + "QUJD" * 16, "whsec_" + "QUJD" * 21 + "QQ"],
    ids=["24-bytes", "48-bytes", "64-bytes-unpadded"],
)
def test_standard_secrets_of_24_to_64_bytes_are_accepted(db, secret):
    TenantFactory(slug="acme")
    doc = json.loads(_run("source_add", "acme", "--kind", "standard", "--secret", secret, "--json"))
    assert doc["kind"] == "standard"


def test_rotate_refuses_a_weak_secret_and_a_huge_overlap_with_the_allowed_maximum(
    db,
):
    info = WebhookSourceFactory(
        tenant=TenantFactory(slug="acme"), kind="standard", secret=STANDARD_SECRET, actor="t"
    )
    with pytest.raises(CommandError, match="this one is 1 bytes"):
        _run("source_rotate_secret", info.source_id, "--secret", "whsec_AA==")
    new = "whsec_" + "QUJD" * 16
    for overlap in ("3000000d", "31d", "99999999999999999999d"):
        with pytest.raises(CommandError, match=r"30d|far too long") as refused:
            _run("source_rotate_secret", info.source_id, "--secret", new, "--overlap", overlap)
        assert "Traceback" not in str(refused.value)
    with pytest.raises(CommandError, match=r"between 0s and 30d \(the allowed maximum"):
        _run("source_rotate_secret", info.source_id, "--secret", new, "--overlap", "3000000d")
    with system_scope("test"):
        row = WebhookSource.objects.get(source_id=info.source_id)
    assert crypto.decrypt(row.secret_encrypted) == STANDARD_SECRET  # nothing changed
    assert "previous one verifies" in _run(
        "source_rotate_secret", info.source_id, "--secret", new, "--overlap", "30d"
    )


def test_admin_add_with_a_weak_secret_is_a_form_error_page(db):
    tenant = TenantFactory(slug="acme")
    client = staff_client("tenants.view_webhooksource", "tenants.add_webhooksource")
    for kind, secret, message in BAD_SECRETS:
        response = client.post(
            reverse("admin:tenants_webhooksource_add"),
            {"tenant": tenant.pk, "kind": kind, "secret": secret, "type_field": "type"},
        )
        assert response.status_code == 200, (kind, secret)
        assert message.encode() in response.content
    assert _sources("standard") == _sources("stripe") == _sources("shopify") == []


def test_admin_rotate_with_a_huge_overlap_or_weak_secret_is_a_form_error_not_a_500(
    db,
):
    info = WebhookSourceFactory(
        tenant=TenantFactory(slug="acme"), kind="shopify", secret=SHOPIFY_SECRET, actor="t"
    )
    with system_scope("test"):
        pk = WebhookSource.objects.get(source_id=info.source_id).pk
    client = staff_client("tenants.view_webhooksource", "tenants.rotate_webhooksource_secret")
    rotate = reverse("admin:tenants_webhooksource_rotate", args=[pk])
    new = "shpss_" + "f" * 32
    for form, message in [
        ({"secret": new, "overlap": "3000000d"}, b"between 0s and 30d"),
        ({"secret": new, "overlap": "99999999999999999999d"}, b"far too long"),
        ({"secret": "short", "overlap": "1h"}, b"Shopify secret is at least 32"),
    ]:
        response = client.post(rotate, form)
        assert response.status_code == 200, form
        assert b"errorlist" in response.content
        assert message in response.content
        assert new.encode() not in response.content
    with system_scope("test"):
        row = WebhookSource.objects.get(source_id=info.source_id)
    assert crypto.decrypt(row.secret_encrypted) == SHOPIFY_SECRET


def test_standard_subject_field_makes_events_erasable(db, deliver):
    tenant = TenantFactory(slug="acme")
    doc = json.loads(
        _run(
            "source_add",
            *("acme", "--kind", "standard", "--secret", STANDARD_SECRET),
            *("--subject-field", "customer.id", "--json"),
        )
    )
    path = doc["path"]
    deliveries = {
        "m1": {"type": "order.paid", "customer": {"id": "cus_42"}, "amount": "5.00"},
        "m2": {"type": "order.paid", "customer": {"id": 7}},
        "m3": {"type": "order.paid", "customer": "cus_42"},  # no customer.id: no subject
    }
    for msg_id, body in deliveries.items():
        raw = encode(body)
        assert deliver(path, raw, standard_headers(STANDARD_SECRET, raw, msg_id)).status_code == 200
    with tenant_scope(tenant.id):
        subjects = dict(Event.objects.filter(tenant=tenant).values_list("type", "subject_id"))
        by_key = {
            e.idempotency_key.rsplit(":", 1)[1]: e.subject_id
            for e in Event.objects.filter(tenant=tenant)
        }
    assert subjects  # stored
    assert by_key == {"m1": "cus_42", "m2": "7", "m3": None}
    _run("events_erase", "acme", "--subject", "cus_42")
    with tenant_scope(tenant.id):
        left = {e.idempotency_key.rsplit(":", 1)[1] for e in Event.objects.filter(tenant=tenant)}
    assert left == {"m2", "m3"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "shopify", "--secret", SHOPIFY_SECRET), "only a standard source"),
        (("--kind", "standard", "--secret", STANDARD_SECRET), "subject field: a dotted path"),
    ],
)
def test_subject_field_refusals(db, args, message):
    TenantFactory(slug="acme")
    field = "customer.id" if message.startswith("only") else "customer..id"
    with pytest.raises(CommandError, match=message):
        _run("source_add", "acme", *args, "--subject-field", field)


def test_a_standard_source_stored_with_an_empty_key_answers_401_not_500(sources, deliver):
    # A row written before secrets were checked (source_add took whsec_ then).
    with tenant_scope(sources.tenant.id):
        WebhookSource.objects.filter(source_id=sources.standard.source_id).update(
            secret_encrypted=crypto.encrypt("whsec_")
        )
    body = encode({"type": "a.b"})
    response = deliver(sources.standard, body, standard_headers(STANDARD_SECRET, body, "m-empty"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
