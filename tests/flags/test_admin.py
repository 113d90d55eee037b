"""The admin flag editor: effective values and sources, one-click pause, history, permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from flags.models import FlagChange, TenantFlag
from flags.selectors import effective_flags, flags_explain
from flags.services import flag_update
from tenants.scope import system_scope
from tests.factories import TenantFactory
from tests.helpers import staff_client

pytestmark = pytest.mark.django_db

TENANTS = reverse("admin:flags_tenantflagset_changelist")
GLOBALS = reverse("admin:flags_globalflag_changelist")
HISTORY = reverse("admin:flags_flagchange_changelist")


def toggle_url(tenant, action):
    return reverse("admin:flags_tenant_sync", args=[tenant.pk, action])


def test_global_list_shows_every_flag_with_effective_value_and_source(admin_client):
    flag_update(tenant_id=None, values={"retryCap": 5}, actor="t", via="cli")
    page = admin_client.get(GLOBALS).content.decode()
    for key in ("syncEnabled", "minIntervalSec", "retryCap", "ingestRatePerSec"):
        assert key in page
    assert "global setting" in page
    assert "built-in default" in page
    assert "Pause sync for all tenants" in page


def test_tenant_list_shows_effective_values_and_where_they_come_from(admin_client):
    a, b = TenantFactory(slug="alpha"), TenantFactory(slug="bravo")
    flag_update(tenant_id=None, values={"minIntervalSec": 300}, actor="t", via="cli")
    flag_update(tenant_id=b.id, values={"syncEnabled": False}, actor="t", via="cli")
    page = admin_client.get(TENANTS).content.decode()
    assert 'data-sync="true">on</span> <small>(default)</small>' in page
    assert 'data-sync="false">PAUSED</span> <small>(tenant)</small>' in page
    assert "300 <small>(global)</small>" in page
    assert f'formaction="{toggle_url(a, "pause")}"' in page
    assert f'formaction="{toggle_url(b, "resume")}"' in page


def test_one_click_pause_and_resume_change_the_flag_and_the_history(admin_client, commit_hooks):
    tenant = TenantFactory(slug="store-1")
    effective_flags(tenant_id=tenant.id)
    response = commit_hooks(admin_client.post, toggle_url(tenant, "pause"))
    assert response.status_code == 302
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is False
    history = admin_client.get(HISTORY).content.decode()
    assert "store-1" in history
    assert "(inherit: true) → false" in history
    commit_hooks(admin_client.post, toggle_url(tenant, "resume"))
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True
    with system_scope("test"):
        changes = list(FlagChange.objects.order_by("id").values_list("old", "new", "actor", "via"))
    assert changes == [(None, False, "admin", "admin"), (False, True, "admin", "admin")]


def test_toggle_refuses_get(admin_client):
    tenant = TenantFactory()
    assert admin_client.get(toggle_url(tenant, "pause")).status_code == 405


def test_bulk_actions_pause_selected_tenants(admin_client):
    a, b, c = TenantFactory(), TenantFactory(), TenantFactory()
    admin_client.post(TENANTS, {"action": "pause_sync", "_selected_action": [str(a.pk), str(b.pk)]})
    with system_scope("test"):
        paused = set(
            TenantFlag.objects.filter(key="syncEnabled").values_list("tenant_id", flat=True)
        )
    assert paused == {a.pk, b.pk}
    assert c.pk not in paused


def test_bulk_pause_with_an_offboarded_tenant_selected_changes_nothing_and_says_why(admin_client):
    from tenants.models import Tenant

    live = TenantFactory(slug="live")
    gone = TenantFactory(slug="gone", status=Tenant.Status.OFFBOARDED)
    response = admin_client.post(
        TENANTS,
        {"action": "pause_sync", "_selected_action": [str(live.pk), str(gone.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing paused: tenant &#x27;gone&#x27; is offboarded" in page
    assert "Paused sync for" not in page
    with system_scope("test"):
        assert not TenantFlag.objects.exists()  # all or nothing: `live` is not paused either
        assert not FlagChange.objects.exists()
    resumed = admin_client.post(toggle_url(gone, "resume"), follow=True)
    assert resumed.status_code == 200
    assert "Nothing resumed: tenant &#x27;gone&#x27; is offboarded" in resumed.content.decode()


# No flags permission: the list itself is refused; view only: the action is not offered.
@pytest.mark.parametrize(("perms", "status"), [((), 403), (("flags.view_flags",), 200)])
def test_bulk_pause_needs_the_change_permission(perms, status):
    tenant = TenantFactory()
    client = staff_client(*perms)
    response = client.post(TENANTS, {"action": "pause_sync", "_selected_action": [str(tenant.pk)]})
    assert response.status_code == status
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True
    with system_scope("test"):
        assert not TenantFlag.objects.exists()


def test_bulk_pause_by_staff_with_the_change_permission():
    tenant = TenantFactory()
    client = staff_client("flags.change_flags")
    response = client.post(
        TENANTS, {"action": "pause_sync", "_selected_action": [str(tenant.pk)]}, follow=True
    )
    assert "Paused sync for 1 tenant(s)." in response.content.decode()
    assert flags_explain(tenant_id=tenant.id)["syncEnabled"].value is False


def test_pause_all_asks_first_then_pauses_every_tenant(admin_client, commit_hooks):
    a = TenantFactory()
    url = reverse("admin:flags_sync_all", args=["pause"])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert "every tenant" in confirm.content.decode()
    assert effective_flags(tenant_id=a.id)["syncEnabled"] is True
    commit_hooks(admin_client.post, url)
    assert effective_flags(tenant_id=a.id)["syncEnabled"] is False
    commit_hooks(admin_client.post, reverse("admin:flags_sync_all", args=["resume"]))
    assert effective_flags(tenant_id=a.id)["syncEnabled"] is True


def test_tenant_editor_saves_overrides_and_blank_means_inherit(admin_client):
    tenant = TenantFactory()
    url = reverse("admin:flags_tenantflagset_change", args=[tenant.pk])
    page = admin_client.get(url).content.decode()
    assert "Effective values" in page
    assert "global value (900)" in page
    response = admin_client.post(
        url,
        {"syncEnabled": "false", "minIntervalSec": "60", "retryCap": "", "ingestRatePerSec": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    explained = flags_explain(tenant_id=tenant.id)
    assert (explained["syncEnabled"].value, explained["syncEnabled"].source) == (False, "tenant")
    assert explained["minIntervalSec"].value == 60
    assert explained["retryCap"].source == "default"
    admin_client.post(url, {"syncEnabled": "", "minIntervalSec": "60", "retryCap": ""})
    assert flags_explain(tenant_id=tenant.id)["syncEnabled"].source == "default"
    page = admin_client.get(url).content.decode()
    assert "false &rarr; (inherit: true)" in page  # the history on the tenant's page


@pytest.mark.parametrize(
    ("field", "value"),
    [("minIntervalSec", "4"), ("minIntervalSec", "abc"), ("retryCap", "11"), ("syncEnabled", "x")],
)
def test_tenant_editor_shows_a_form_error_for_invalid_values(admin_client, field, value):
    tenant = TenantFactory()
    url = reverse("admin:flags_tenantflagset_change", args=[tenant.pk])
    response = admin_client.post(url, {field: value})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    with system_scope("test"):
        assert not TenantFlag.objects.exists()


def test_global_editor_validates_and_saves_through_the_service(admin_client):
    url = reverse("admin:flags_globalflag_change", args=["retryCap"])
    admin_client.get(GLOBALS)  # materialises the rows
    bad = admin_client.post(url, {"setting": "42"})
    assert bad.status_code == 200
    assert "errornote" in bad.content.decode()
    good = admin_client.post(url, {"setting": "6"})
    assert good.status_code == 302
    assert flags_explain(tenant_id=None)["retryCap"].value == 6
    with system_scope("test"):
        change = FlagChange.objects.get()
    assert (change.tenant_id, change.old, change.new, change.via) == (None, None, 6, "admin")


def test_staff_without_flags_permission_cannot_see_or_change_flags():
    tenant = TenantFactory()
    client = staff_client()
    assert client.get(TENANTS).status_code == 403
    assert client.get(GLOBALS).status_code == 403
    assert client.post(toggle_url(tenant, "pause")).status_code == 403
    assert client.post(reverse("admin:flags_sync_all", args=["pause"])).status_code == 403
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True


def test_staff_with_view_permission_sees_flags_read_only():
    tenant = TenantFactory(slug="viewable")
    client = staff_client("flags.view_flags")
    page = client.get(TENANTS)
    assert page.status_code == 200
    assert "viewable" in page.content.decode()
    assert "flag-toggle" not in page.content.decode()
    assert (
        client.get(reverse("admin:flags_tenantflagset_change", args=[tenant.pk])).status_code == 200
    )
    assert client.get(HISTORY).status_code == 200
    assert client.post(toggle_url(tenant, "pause")).status_code == 403
    url = reverse("admin:flags_tenantflagset_change", args=[tenant.pk])
    assert client.post(url, {"syncEnabled": "false"}).status_code == 403
    with system_scope("test"):
        assert not TenantFlag.objects.exists()


def test_staff_with_change_permission_can_pause():
    tenant = TenantFactory()
    client = staff_client("flags.change_flags")
    assert client.post(toggle_url(tenant, "pause")).status_code == 302
    assert flags_explain(tenant_id=tenant.id)["syncEnabled"].value is False


def test_global_bool_flag_is_edited_with_a_choice_and_view_only_staff_get_no_editor(admin_client):
    admin_client.get(GLOBALS)  # materialises the rows
    url = reverse("admin:flags_globalflag_change", args=["syncEnabled"])
    assert "built-in default (true)" in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"setting": "false"}).status_code == 302
    assert flags_explain(tenant_id=None)["syncEnabled"].value is False
    assert admin_client.post(url, {"setting": ""}).status_code == 302
    assert flags_explain(tenant_id=None)["syncEnabled"].source == "default"

    viewer = staff_client("flags.view_flags")
    page = viewer.get(url)
    assert page.status_code == 200
    assert 'name="setting"' not in page.content.decode()
    assert viewer.post(url, {"setting": "false"}).status_code == 403
