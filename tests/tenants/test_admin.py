"""The operator admin: listings without secrets, audited actions, forms that keep RLS invariants."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.scope import system_scope
from tenants.selectors import signing_key_resolve
from tenants.services.tenants import tenant_provision

SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{20,}")


@pytest.fixture
def provisioned(db):
    """acme with device front; returns (tenant, result) with the clear secrets."""
    result = tenant_provision(slug="acme", devices=["front"], actor="test")
    with system_scope("test-check"):
        return Tenant.objects.get(id=result.tenant_id), result


def _assert_no_secret(response, result=None) -> None:
    body = response.content.decode()
    assert not SECRET_RE.search(body)
    if result is not None:
        for key in result.keys:
            assert key.secret not in body
    with system_scope("test-check"):
        for encrypted in SigningKey.objects.values_list("secret_encrypted", flat=True):
            assert encrypted not in body
    assert "secret_encrypted" not in body


class _Inputs(HTMLParser):
    """Collect the <input> values a browser would post back from a form page."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "checkbox"):
            self.data[attrs["name"]] = attrs.get("value") or ""


def _form_data(response) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(response.content.decode())
    return parser.data


def _action(client, model: str, action: str, ids) -> object:
    return client.post(
        reverse(f"admin:tenants_{model}_changelist"),
        {"action": action, "_selected_action": [str(i) for i in ids]},
    )


def test_admin_lists_and_change_pages_never_show_secrets(superuser_client, provisioned):
    tenant, result = provisioned
    with system_scope("test-check"):
        key = SigningKey.objects.filter(tenant=tenant).first()
        device = Device.objects.get(tenant=tenant)
        audit = AuditLog.objects.first()
    pages = [
        reverse("admin:tenants_tenant_changelist"),
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        reverse("admin:tenants_device_changelist"),
        reverse("admin:tenants_device_change", args=[device.pk]),
        reverse("admin:tenants_signingkey_changelist"),
        reverse("admin:tenants_signingkey_change", args=[key.pk]),
        reverse("admin:tenants_auditlog_changelist"),
        reverse("admin:tenants_auditlog_change", args=[audit.pk]),
    ]
    for url in pages:
        response = superuser_client.get(url)
        assert response.status_code == 200, url
        _assert_no_secret(response, result)
    # The lists do show the tenant's objects (the admin runs in its system scope).
    body = superuser_client.get(reverse("admin:tenants_signingkey_changelist")).content.decode()
    assert all(k.key_id in body for k in result.keys)


def test_admin_forms_keep_tenant_fields_read_only(superuser_client, provisioned):
    tenant, _ = provisioned
    with system_scope("test-check"):
        key = SigningKey.objects.filter(tenant=tenant, device__isnull=False).first()
        device = Device.objects.get(tenant=tenant)
    for url in (
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        reverse("admin:tenants_device_change", args=[device.pk]),
        reverse("admin:tenants_signingkey_change", args=[key.pk]),
    ):
        form = superuser_client.get(url).context["adminform"].form
        assert not {"tenant", "slug", "id", "device", "status", "key_id"} & set(form.fields), url
    # No add or delete for devices and keys (they come with their secret from provisioning).
    assert superuser_client.get(reverse("admin:tenants_signingkey_add")).status_code == 403
    assert superuser_client.get(reverse("admin:tenants_device_add")).status_code == 403
    assert (
        superuser_client.get(reverse("admin:tenants_tenant_delete", args=[tenant.pk])).status_code
        == 403
    )
    # Renaming is the one edit, and it is audited; a posted slug is ignored.
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    data = _form_data(superuser_client.get(url))
    data.update({"name": "Acme Renamed", "slug": "hijack", "status": "suspended", "id": "x"})
    response = superuser_client.post(url, data)
    assert response.status_code == 302
    with system_scope("test-check"):
        tenant.refresh_from_db()
        audit = AuditLog.objects.get(action="tenant.rename")
    assert (tenant.slug, tenant.name, tenant.status) == ("acme", "Acme Renamed", "active")
    assert audit.actor == "operator"
    assert audit.actor_user.username == "operator"


def test_admin_audit_log_is_read_only(superuser_client, provisioned):
    with system_scope("test-check"):
        audit = AuditLog.objects.first()
    response = superuser_client.get(reverse("admin:tenants_auditlog_change", args=[audit.pk]))
    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    assert superuser_client.get(reverse("admin:tenants_auditlog_add")).status_code == 403
    url = reverse("admin:tenants_auditlog_delete", args=[audit.pk])
    assert superuser_client.get(url).status_code == 403


def test_admin_add_tenant_provisions_and_shows_secret_once(superuser_client, db):
    response = superuser_client.post(
        reverse("admin:tenants_tenant_add"), {"slug": "newco", "name": "New Co"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    secrets = SECRET_RE.findall(body)
    assert len(secrets) == 1
    key_id = re.search(r"ck_[0-9a-f]{32}_[0-9a-f]{16}", body).group(0)
    assert signing_key_resolve(key_id).tenant_slug == "newco"
    with system_scope("test-check"):
        tenant = Tenant.objects.get(slug="newco")
        audit = AuditLog.objects.get(action="tenant.provision", tenant=tenant)
    assert audit.actor_user.username == "operator"
    # Afterwards the tenant's page no longer shows it.
    _assert_no_secret(
        superuser_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    )


def test_admin_add_tenant_with_bad_or_taken_slug_is_a_form_error(superuser_client, provisioned):
    for slug in ("Bad_Slug", "acme"):
        response = superuser_client.post(
            reverse("admin:tenants_tenant_add"), {"slug": slug, "name": "X"}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["slug"]
    with system_scope("test-check"):
        assert Tenant.objects.count() == 1


def test_admin_rotate_action_shows_new_secret_once_and_audits_operator(
    superuser_client, provisioned
):
    tenant, result = provisioned
    old = next(k for k in result.keys if k.device == "front")
    with system_scope("test-check"):
        pk = SigningKey.objects.get(key_id=old.key_id).pk
    response = _action(superuser_client, "signingkey", "rotate_keys", [pk])
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secrets = SECRET_RE.findall(response.content.decode())
    assert len(secrets) == 1
    assert secrets[0] != old.secret
    with system_scope("test-check"):
        audit = AuditLog.objects.get(action="signing_key.rotate")
        new_key = SigningKey.objects.select_related("device").get(key_id=audit.new["active"])
    assert audit.actor_user.username == "operator"
    assert audit.tenant_id == tenant.id
    assert new_key.device.name == "front"
    assert signing_key_resolve(old.key_id).secrets  # 24 h overlap
    # The secret is not parked in a message/session for a later page.
    _assert_no_secret(superuser_client.get(reverse("admin:tenants_signingkey_changelist")))


def test_admin_revoke_device_action_stops_its_keys_and_audits(superuser_client, provisioned):
    tenant, result = provisioned
    with system_scope("test-check"):
        device = Device.objects.get(tenant=tenant, name="front")
    response = _action(superuser_client, "device", "revoke_devices", [device.pk])
    assert response.status_code == 302
    device_key = next(k for k in result.keys if k.device == "front")
    assert signing_key_resolve(device_key.key_id).revoked
    with system_scope("test-check"):
        audit = AuditLog.objects.get(action="device.revoke")
    assert audit.actor_user.username == "operator"
    assert audit.target == "acme/front"


def test_admin_suspend_and_resume_actions_audit_operator(superuser_client, provisioned):
    tenant, result = provisioned
    _action(superuser_client, "tenant", "suspend_tenants", [tenant.pk])
    assert signing_key_resolve(result.keys[0].key_id).tenant_active is False
    _action(superuser_client, "tenant", "resume_tenants", [tenant.pk])
    assert signing_key_resolve(result.keys[0].key_id).tenant_active is True
    with system_scope("test-check"):
        rows = list(
            AuditLog.objects.filter(action__in=["tenant.suspend", "tenant.resume"])
            .order_by("at")
            .values_list("action", "actor", "old", "new")
        )
    assert rows == [
        ("tenant.suspend", "operator", {"status": "active"}, {"status": "suspended"}),
        ("tenant.resume", "operator", {"status": "suspended"}, {"status": "active"}),
    ]


def test_admin_revoke_key_action(superuser_client, provisioned):
    _tenant, result = provisioned
    with system_scope("test-check"):
        pk = SigningKey.objects.get(key_id=result.keys[0].key_id).pk
    _action(superuser_client, "signingkey", "revoke_keys", [pk])
    assert signing_key_resolve(result.keys[0].key_id).revoked
    with system_scope("test-check"):
        assert AuditLog.objects.get(action="signing_key.revoke").actor == "operator"


def test_admin_modules_leave_transactions_and_rules_to_the_services():
    """Admin actions and form saves call one service each: no transaction or faked state here."""
    from pathlib import Path

    from django.conf import settings

    modules = [
        path
        for app in ("codex", "tenants", "flags", "ingest", "reconcile")
        for path in sorted((Path(settings.BASE_DIR) / app).glob("admin*.py"))
    ]
    assert len(modules) >= 8
    for path in modules:
        text = path.read_text()
        for needle in ("transaction.", "import transaction", "._state", "select_for_update"):
            assert needle not in text, f"{path.parent.name}/{path.name} has {needle}"


def test_admin_resume_of_many_tenants_is_all_or_nothing(superuser_client, provisioned):
    from tenants.audit import audit_record
    from tenants.services.offboarding import OFFBOARD_STARTED
    from tenants.services.tenants import tenant_suspend
    from tests.factories import TenantFactory

    acme, _ = provisioned
    halfway = TenantFactory(slug="zz-halfway")  # after acme in the list's slug order
    audit_record(actor="test", action=OFFBOARD_STARTED, tenant_id=halfway.id, target=halfway.slug)
    for tenant in (acme, halfway):
        tenant_suspend(tenant=tenant, actor="test")
    response = _action(superuser_client, "tenant", "resume_tenants", [acme.pk, halfway.pk])
    assert response.status_code == 302
    page = superuser_client.get(response["Location"]).content.decode()
    assert "Nothing resumed" in page
    assert "is being offboarded" in page
    with system_scope("test-check"):
        statuses = set(Tenant.objects.values_list("status", flat=True))
        assert not AuditLog.objects.filter(action="tenant.resume").exists()
    assert statuses == {"suspended"}  # acme's resume, made first, was rolled back


def test_admin_source_rotation_that_fails_half_way_changes_nothing(superuser_client, provisioned):
    from tenants.models import WebhookSource
    from tests.factories import WebhookSourceFactory

    acme, _ = provisioned
    info = WebhookSourceFactory(tenant=acme, kind="shopify")
    with system_scope("test-check"):
        before = WebhookSource.objects.get(source_id=info.source_id)
    url = reverse("admin:tenants_webhooksource_rotate", args=[before.pk])
    # A shopify source has no API key: the new secret (checked first) must not stay rotated.
    response = superuser_client.post(
        url, {"secret": "shpss_" + "a" * 32, "overlap": "24h", "api_key": "rk_test_x"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing changed: only a stripe source has an API key" in body
    assert "Secret rotated" not in body
    with system_scope("test-check"):
        after = WebhookSource.objects.get(source_id=info.source_id)
        assert not AuditLog.objects.filter(action="source.rotate_secret").exists()
    assert (after.secret_encrypted, after.previous_valid_until) == (before.secret_encrypted, None)
    # Both given and both valid: one message each, then the source's page.
    response = superuser_client.post(
        url, {"secret": "shpss_" + "b" * 32, "overlap": "1h", "api_key": ""}, follow=True
    )
    assert "Secret rotated; the previous one verifies until" in response.content.decode()
