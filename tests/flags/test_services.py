"""flags.services: validation in every shape, history and audit rows, no-ops, provisioning."""

from __future__ import annotations

import pytest

from flags.models import FlagChange, GlobalFlag, TenantFlag
from flags.registry import FlagValueError, history_text, spec_for
from flags.selectors import effective_flags, flags_explain
from flags.services import (
    flag_update,
    flags_parse,
    flags_provision_tenant,
    flags_set_sync_all,
    flags_set_sync_many,
)
from tenants.errors import TenantNotFound, TenantOffboarded
from tenants.models import AuditLog, Tenant
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory, TenantFlagFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("syncEnabled", 1),
        ("syncEnabled", "false"),
        ("minIntervalSec", 4),
        ("minIntervalSec", 86401),
        ("minIntervalSec", True),
        ("minIntervalSec", 60.0),
        ("retryCap", -1),
        ("retryCap", 11),
        ("ingestRatePerSec", 0),
        ("ingestRatePerSec", 100001),
        ("noSuchFlag", 1),
    ],
)
def test_flag_update_refuses_out_of_bounds_or_mistyped_values(db, key, value):
    tenant = TenantFactory()
    with pytest.raises(FlagValueError, match=f"^{key}: ") as info:
        flag_update(tenant_id=tenant.id, values={key: value}, actor="t", via="cli")
    assert info.value.key == key
    with system_scope("test"):
        assert not TenantFlag.objects.exists()
        assert not FlagChange.objects.exists()


def test_flag_update_is_all_or_nothing(db):
    tenant = TenantFactory()
    with pytest.raises(FlagValueError, match="retryCap"):
        flag_update(
            tenant_id=tenant.id,
            values={"syncEnabled": False, "retryCap": 99},
            actor="t",
            via="cli",
        )
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("syncEnabled", "false", False),
        ("syncEnabled", "TRUE", True),
        ("syncEnabled", "0", False),
        ("syncEnabled", "on", True),
        ("minIntervalSec", " 60 ", 60),
        ("retryCap", "0", 0),
    ],
)
def test_flags_parse_accepts_operator_spellings(key, text, expected):
    assert flags_parse({key: text}) == {key: expected}


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("syncEnabled", "maybe"),
        ("minIntervalSec", "1e3"),
        ("minIntervalSec", "3"),
        ("retryCap", ""),
    ],
)
def test_flags_parse_explains_what_is_allowed(key, text):
    with pytest.raises(FlagValueError, match=spec_for(key).bounds_text().split(" ")[0]):
        flags_parse({key: text})


def test_tenant_change_writes_history_and_audit_rows(db):
    tenant = TenantFactory()
    user = UserFactory(username="ops")
    changes = flag_update(
        tenant_id=tenant.id,
        values={"syncEnabled": False},
        actor="ops",
        via="admin",
        user=user,
        reason="store closed",
    )
    assert [(c.key, c.old, c.new) for c in changes] == [("syncEnabled", None, False)]
    with system_scope("test"):
        change = FlagChange.objects.get()
        audit = AuditLog.objects.get(action="flag.update")
    assert (change.tenant_id, change.key, change.old, change.new) == (
        tenant.id,
        "syncEnabled",
        None,
        False,
    )
    assert (change.actor, change.actor_user, change.via, change.reason) == (
        "ops",
        user,
        "admin",
        "store closed",
    )
    assert (audit.tenant_id, audit.target, audit.old, audit.new) == (
        tenant.id,
        "syncEnabled",
        None,
        False,
    )


def test_second_change_records_the_previous_value_and_unset_deletes_the_override(
    db,
):
    tenant = TenantFactory()
    flag_update(tenant_id=tenant.id, values={"minIntervalSec": 60}, actor="a", via="cli")
    flag_update(tenant_id=tenant.id, values={"minIntervalSec": 120}, actor="b", via="cli")
    flag_update(tenant_id=tenant.id, values={"minIntervalSec": None}, actor="c", via="cli")
    with system_scope("test"):
        history = list(FlagChange.objects.order_by("id").values_list("old", "new", "actor"))
        assert not TenantFlag.objects.filter(tenant_id=tenant.id).exists()
    assert history == [(None, 60, "a"), (60, 120, "b"), (120, None, "c")]
    assert flags_explain(tenant_id=tenant.id)["minIntervalSec"].source == "default"


def test_history_records_the_value_in_force_behind_an_unset_level(db):
    tenant = TenantFactory()
    flag_update(tenant_id=None, values={"minIntervalSec": 60}, actor="g", via="cli")
    flag_update(tenant_id=tenant.id, values={"minIntervalSec": 5}, actor="t", via="cli")
    flag_update(tenant_id=tenant.id, values={"minIntervalSec": None}, actor="t", via="cli")
    with system_scope("test"):
        history = list(
            FlagChange.objects.order_by("id").values_list(
                "tenant_id", "old", "old_effective", "new", "new_effective"
            )
        )
    assert history == [
        (None, None, 900, 60, 60),  # global: from the built-in default
        (tenant.id, None, 60, 5, 5),  # first override: it inherited the global 60
        (tenant.id, 5, 5, None, 60),  # unset: back to inheriting 60
    ]


@pytest.mark.parametrize(
    ("stored", "effective", "tenant", "text"),
    [
        (None, True, True, "(inherit: true)"),
        (None, 900, False, "(default: 900)"),
        (False, False, True, "false"),
        (None, None, True, "(inherit)"),  # rows recorded before effective values were
    ],
)
def test_history_text_shows_what_an_unset_level_inherited(stored, effective, tenant, text):
    assert history_text(stored, effective, tenant=tenant) == text


def test_setting_the_same_value_again_writes_no_history(db):
    tenant = TenantFactory()
    flag_update(tenant_id=tenant.id, values={"retryCap": 2}, actor="a", via="cli")
    assert flag_update(tenant_id=tenant.id, values={"retryCap": 2}, actor="a", via="cli") == []
    with system_scope("test"):
        assert FlagChange.objects.count() == 1


def test_global_change_history_row_has_no_tenant_and_is_invisible_to_tenants(db):
    tenant = TenantFactory()
    flag_update(tenant_id=None, values={"retryCap": 5}, actor="ops", via="cli")
    with system_scope("test"):
        assert GlobalFlag.objects.get(key="retryCap").value == 5
        assert FlagChange.objects.get().tenant_id is None
    with tenant_scope(tenant.id):
        assert not FlagChange.objects.exists()
    explained = flags_explain(tenant_id=tenant.id)["retryCap"]
    assert (explained.value, explained.source) == (5, "global")


def test_tenant_overrides_are_isolated_by_row_level_security(db):
    a, b = TenantFactory(), TenantFactory()
    flag_update(tenant_id=b.id, values={"syncEnabled": False}, actor="t", via="cli")
    with tenant_scope(a.id):
        assert TenantFlag.objects.count() == 0
        assert FlagChange.objects.count() == 0
    with tenant_scope(b.id):
        assert TenantFlag.objects.count() == 1
    assert effective_flags(tenant_id=a.id)["syncEnabled"] is True
    assert effective_flags(tenant_id=b.id)["syncEnabled"] is False


def test_flag_update_for_a_missing_tenant_is_a_clear_error(db):
    with pytest.raises(TenantNotFound, match="no tenant with id") as caught:
        flag_update(
            tenant_id="00000000-0000-0000-0000-000000000001",
            values={"retryCap": 1},
            actor="t",
            via="cli",
        )
    assert caught.value.code == "tenant_not_found"


def test_pause_all_sets_global_and_clears_overrides_that_would_keep_syncing(db, commit_hooks):
    a, b, c = TenantFactory(), TenantFactory(), TenantFactory()
    flag_update(tenant_id=b.id, values={"syncEnabled": True}, actor="t", via="cli")
    flag_update(tenant_id=c.id, values={"syncEnabled": False}, actor="t", via="cli")
    commit_hooks(flags_set_sync_all, enabled=False, actor="ops", via="admin")
    assert {t.slug: effective_flags(tenant_id=t.id)["syncEnabled"] for t in (a, b, c)} == {
        a.slug: False,
        b.slug: False,
        c.slug: False,
    }
    commit_hooks(flags_set_sync_all, enabled=True, actor="ops", via="admin")
    assert all(effective_flags(tenant_id=t.id)["syncEnabled"] for t in (a, b, c))
    with system_scope("test"):
        assert not TenantFlag.objects.filter(key="syncEnabled").exists()


def test_set_sync_many_pauses_each_tenant_once_with_history(db, commit_hooks):
    a, b, c = TenantFactory(), TenantFactory(), TenantFactory()
    selected = [a.id, str(b.id), a.id]  # ids or their text; a repeat changes nothing more
    changes = commit_hooks(
        flags_set_sync_many, tenant_ids=selected, enabled=False, actor="ops", via="admin"
    )
    assert sorted(str(ch.tenant_id) for ch in changes) == sorted([str(a.id), str(b.id)])
    in_force = [effective_flags(tenant_id=t.id)["syncEnabled"] for t in (a, b, c)]
    assert in_force == [False, False, True]
    with system_scope("test"):
        assert set(FlagChange.objects.values_list("reason", flat=True)) == {"pause sync"}


def test_set_sync_many_with_an_offboarded_tenant_changes_nothing_and_names_it(db):
    live = TenantFactory()
    gone = TenantFactory(slug="gone", status=Tenant.Status.OFFBOARDED)
    with pytest.raises(TenantOffboarded, match="tenant 'gone' is offboarded") as caught:
        flags_set_sync_many(tenant_ids=[live.id, gone.id], enabled=False, actor="t", via="admin")
    assert (caught.value.code, caught.value.status_code) == ("tenant_offboarded", 409)
    with system_scope("test"):
        assert not TenantFlag.objects.exists()
    missing = "00000000-0000-0000-0000-000000000003"
    with pytest.raises(TenantNotFound, match="no tenant with id") as caught:
        flags_set_sync_many(tenant_ids=[live.id, missing], enabled=False, actor="t", via="admin")
    assert caught.value.code == "tenant_not_found"
    with system_scope("test"):
        assert not TenantFlag.objects.exists()  # all or nothing


def test_provision_tenant_needs_no_rows_and_validates(db):
    tenant = TenantFactory()
    assert flags_provision_tenant(tenant_id=tenant.id, actor="provision") == []
    with system_scope("test"):
        assert not TenantFlag.objects.exists()
    with pytest.raises(TenantNotFound, match="no tenant with id") as caught:
        flags_provision_tenant(tenant_id="00000000-0000-0000-0000-000000000002", actor="p")
    assert caught.value.code == "tenant_not_found"


def test_provision_tenant_applies_initial_overrides_with_history(db):
    tenant = TenantFactory()
    changes = flags_provision_tenant(
        tenant_id=tenant.id, actor="provision", overrides={"syncEnabled": False}
    )
    assert len(changes) == 1
    with system_scope("test"):
        assert FlagChange.objects.get().via == "provision"
    with pytest.raises(FlagValueError, match="retryCap: must be an integer from 0 to 10"):
        flags_provision_tenant(tenant_id=tenant.id, actor="p", overrides={"retryCap": 50})


def test_stored_value_out_of_todays_bounds_is_ignored_not_served(db):
    tenant = TenantFactory()
    TenantFlagFactory(tenant=tenant, key="minIntervalSec", value=1)
    TenantFlagFactory(tenant=tenant, key="retiredFlag", value=1)
    values = effective_flags(tenant_id=tenant.id)
    assert values["minIntervalSec"] == 900
    assert "retiredFlag" not in values
