"""Least privilege in the admin: every write action needs its own permission; view-only staff
change nothing and see no secret; the right permission is enough; actions are all-or-nothing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from ingest.models import DeadLetter
from ingest.services.deadletters import deadletter_record
from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.services.tenants import tenant_provision
from tests.factories import EventFactory
from tests.helpers import staff_client

SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{20,}")
VIEW_ONLY = [
    "tenants.view_tenant",
    "tenants.view_device",
    "tenants.view_signingkey",
    "ingest.view_deadletter",
]


@pytest.fixture
def acme(db):
    result = tenant_provision(slug="acme", devices=["front"], actor="test")
    with system_scope("test"):
        return Tenant.objects.get(id=result.tenant_id)


def _state():
    """Everything an action could change, in a comparable form."""
    with system_scope("test"):
        return (
            sorted(Tenant.objects.values_list("slug", "status")),
            sorted(Device.objects.values_list("name", "revoked_at")),
            sorted(SigningKey.objects.values_list("key_id", "status", "not_after")),
            sorted(DeadLetter.objects.values_list("id", "resolved_at", "attempts")),
            AuditLog.objects.count(),
        )


def _post_action(client, app_model: str, action: str, ids):
    return client.post(
        reverse(f"admin:{app_model}_changelist"),
        {"action": action, "_selected_action": [str(i) for i in ids]},
        follow=True,
    )


def _targets(acme):
    with system_scope("test"):
        keys = list(SigningKey.objects.filter(tenant=acme).values_list("id", flat=True))
        devices = list(Device.objects.filter(tenant=acme).values_list("id", flat=True))
    return keys, devices


def _dead_letter(acme) -> int:
    event = EventFactory(tenant=acme)
    deadletter_record(
        tenant_id=acme.id, failures={event.id: ValueError("x")}, attempts=4, first_failed_at=None
    )
    with tenant_scope(acme.id):
        return DeadLetter.objects.get(tenant=acme).id


CASES = [
    ("tenants_signingkey", "rotate_keys", "tenants.rotate_signingkey", "keys"),
    ("tenants_signingkey", "revoke_keys", "tenants.revoke_signingkey", "keys"),
    ("tenants_device", "revoke_devices", "tenants.revoke_device", "devices"),
    ("tenants_tenant", "suspend_tenants", "tenants.suspend_tenant", "tenant"),
    ("ingest_deadletter", "replay", "ingest.replay_deadletter", "dlq"),
]


def _ids(kind, acme):
    keys, devices = _targets(acme)
    return {"keys": keys, "devices": devices, "tenant": [acme.id], "dlq": [_dead_letter(acme)]}[
        kind
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("app_model", "action", "perm", "kind"), CASES)
def test_view_only_staff_cannot_run_the_action(acme, app_model, action, perm, kind):
    ids = _ids(kind, acme)
    before = _state()
    client = staff_client(*VIEW_ONLY)
    page = client.get(reverse(f"admin:{app_model}_changelist"))
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()  # not offered
    response = _post_action(client, app_model, action, ids)
    assert response.status_code == 200
    assert not SECRET_RE.search(response.content.decode())
    assert _state() == before  # nothing changed, nothing audited


@pytest.mark.django_db
@pytest.mark.parametrize(("app_model", "action", "perm", "kind"), CASES)
def test_the_actions_own_permission_is_enough(acme, app_model, action, perm, kind):
    ids = _ids(kind, acme)
    before = _state()
    client = staff_client(*VIEW_ONLY, perm)
    response = _post_action(client, app_model, action, ids)
    assert response.status_code == 200
    assert _state() != before
    shows_secret = bool(SECRET_RE.search(response.content.decode()))
    assert shows_secret == (action == "rotate_keys")


@pytest.mark.django_db
def test_provisioning_in_the_admin_needs_the_secret_permission(db):
    plain = staff_client("tenants.view_tenant", "tenants.add_tenant")
    assert plain.get(reverse("admin:tenants_tenant_add")).status_code == 403
    response = plain.post(reverse("admin:tenants_tenant_add"), {"slug": "newco", "name": "N"})
    assert response.status_code == 403
    with system_scope("test"):
        assert not Tenant.objects.filter(slug="newco").exists()
    allowed = staff_client("tenants.view_tenant", "tenants.add_tenant", "tenants.rotate_signingkey")
    response = allowed.post(
        reverse("admin:tenants_tenant_add"), {"slug": "newco", "name": "N"}, follow=True
    )
    assert SECRET_RE.search(response.content.decode())


@pytest.mark.django_db
def test_a_rotation_that_fails_half_way_changes_nothing(acme, monkeypatch):
    from tenants.errors import TenantError
    from tenants.services import keys as key_services

    other = tenant_provision(slug="other", actor="test")
    with system_scope("test"):
        ids = list(SigningKey.objects.values_list("id", flat=True))
    real = key_services.signing_key_rotate
    calls = []

    def rotate_then_fail(**kwargs):
        calls.append(kwargs["tenant"].slug)
        if len(calls) == 2:
            raise TenantError("refused half way")
        return real(**kwargs)

    monkeypatch.setattr(key_services, "signing_key_rotate", rotate_then_fail)
    before = _state()
    client = staff_client(*VIEW_ONLY, "tenants.rotate_signingkey")
    response = _post_action(client, "tenants_signingkey", "rotate_keys", ids)
    assert len(calls) == 2
    assert "Nothing rotated" in response.content.decode()
    assert not SECRET_RE.search(response.content.decode())
    assert _state() == before
    assert other.created
