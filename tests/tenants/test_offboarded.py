"""Offboarding is final: an offboarded tenant is never resumed, re-provisioned or given keys or
sources again, by command, admin or service; each refusal names the state (tenant_offboarded)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from ingest.services.offboard import tenant_offboard
from tenants.errors import TenantOffboarded
from tenants.models import AuditLog, SigningKey, Tenant, WebhookSource
from tenants.scope import system_scope
from tenants.services.offboarding import OFFBOARD_STARTED
from tenants.services.tenants import tenant_provision, tenant_resume, tenant_suspend
from tests.factories import AuditLogFactory, TenantFactory, WebhookSourceFactory
from tests.helpers import STRIPE_SECRET

OFFBOARDED = "tenant 'gone' is offboarded: offboarding is final"


@pytest.fixture(autouse=True)
def _no_fence(settings):
    """No process but this one holds keys here: the second delete pass need not wait."""
    settings.CODEX_OFFBOARD_FENCE_S = 0


@pytest.fixture
def gone(db):
    """Tenant `gone` (tenant key, device `front`, a stripe source with an API key), offboarded."""
    result = tenant_provision(slug="gone", devices=["front"], actor="test")
    with system_scope("test"):
        tenant = Tenant.objects.get(pk=result.tenant_id)
    WebhookSourceFactory(
        tenant=tenant, kind="stripe", secret=STRIPE_SECRET, api_key="rk_test_gone", actor="test"
    )
    tenant_offboard(tenant=tenant, actor="test")
    return tenant


def _status(slug: str) -> str:
    with system_scope("test"):
        return Tenant.objects.get(slug=slug).status


def _command_error(*args: str) -> str:
    with pytest.raises(CommandError, match=r"(?i)offboarded") as caught:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(caught.value)


def _source(tenant) -> WebhookSource:
    """The tenant's one source."""
    with system_scope("test"):
        return WebhookSource.objects.get(tenant=tenant)


def test_resume_of_an_offboarded_tenant_is_refused_naming_the_state(gone):
    with pytest.raises(TenantOffboarded, match=OFFBOARDED) as caught:
        tenant_resume(tenant=gone, actor="test")
    assert caught.value.code == "tenant_offboarded"
    # Suspending a tombstone changes nothing either: it stays offboarded.
    assert tenant_suspend(tenant=gone, actor="test") is False
    assert _status("gone") == Tenant.Status.OFFBOARDED


def test_resume_while_offboarding_is_under_way_is_refused(db):
    tenant = TenantFactory(slug="halfway")
    # A crashed tenant_offboard leaves the tenant suspended with its start row: not resumable.
    AuditLogFactory(tenant=tenant, action=OFFBOARD_STARTED, target="halfway")
    tenant_suspend(tenant=tenant, actor="test")
    with pytest.raises(TenantOffboarded, match="'halfway' is being offboarded"):
        tenant_resume(tenant=tenant, actor="test")
    assert _status("halfway") == Tenant.Status.SUSPENDED


def test_admin_resume_action_answers_a_message_not_a_500(gone, superuser_client):
    response = superuser_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "resume_tenants", "_selected_action": [str(gone.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Nothing resumed: tenant &#x27;gone&#x27; is offboarded" in response.content.decode()
    assert _status("gone") == Tenant.Status.OFFBOARDED
    with system_scope("test"):
        assert not AuditLog.objects.filter(tenant=gone, action="tenant.resume").exists()


def test_provision_tenant_on_an_offboarded_slug_is_refused(gone):
    message = _command_error("provision_tenant", "gone", "--device", "back")
    assert OFFBOARDED in message
    assert _status("gone") == Tenant.Status.OFFBOARDED
    with system_scope("test"):
        assert not SigningKey.objects.filter(tenant=gone).exclude(status="revoked").exists()


def test_no_new_signing_key_for_an_offboarded_tenant(gone):
    assert OFFBOARDED in _command_error("rotate_signing_key", "gone", "--overlap", "0s")
    assert OFFBOARDED in _command_error("rotate_signing_key", "gone", "--device", "front")
    with system_scope("test"):
        assert set(SigningKey.objects.filter(tenant=gone).values_list("status", flat=True)) == {
            SigningKey.Status.REVOKED
        }


def test_no_new_or_re_enabled_source_and_no_source_secret_for_an_offboarded_tenant(gone):
    sid = _source(gone).source_id
    add = ("source_add", "gone", "--kind", "stripe", "--secret", STRIPE_SECRET)
    assert OFFBOARDED in _command_error(*add)
    assert OFFBOARDED in _command_error("source_enable", sid)
    assert OFFBOARDED in _command_error(
        "source_rotate_secret", sid, "--secret", STRIPE_SECRET, "--overlap", "0s"
    )
    assert OFFBOARDED in _command_error("source_set_api_key", sid, "--api-key", "rk_test_back")
    row = _source(gone)
    assert not row.enabled
    assert (row.secret_encrypted, row.api_key_encrypted) == ("", "")


def test_admin_source_add_and_enable_answer_the_state_not_a_500(gone, superuser_client):
    add = superuser_client.post(
        reverse("admin:tenants_webhooksource_add"),
        {"tenant": gone.pk, "kind": "stripe", "secret": STRIPE_SECRET, "type_field": "type"},
    )
    assert add.status_code == 200  # the form again, with the error
    assert "tenant &#x27;gone&#x27; is offboarded" in add.content.decode()
    enable = superuser_client.post(
        reverse("admin:tenants_webhooksource_changelist"),
        {"action": "enable_sources", "_selected_action": [_source(gone).pk]},
        follow=True,
    )
    assert enable.status_code == 200
    assert "Nothing enabled: tenant &#x27;gone&#x27; is offboarded" in enable.content.decode()
    with system_scope("test"):
        assert WebhookSource.objects.filter(tenant=gone).count() == 1
    assert not _source(gone).enabled


def test_no_flag_override_is_written_for_an_offboarded_tenant(gone):
    from flags.models import TenantFlag
    from flags.registry import FlagValueError
    from flags.services import flag_update

    with pytest.raises(FlagValueError, match="is offboarded: offboarding is final"):
        flag_update(tenant_id=gone.id, values={"syncEnabled": False}, actor="test", via="cli")
    assert "offboarded" in _command_error("flags", "set", "--tenant", "gone", "syncEnabled=false")
    with system_scope("test"):
        assert not TenantFlag.objects.filter(tenant_id=gone.id).exists()
