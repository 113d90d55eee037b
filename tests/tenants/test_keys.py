"""Key rotation with overlap, device revocation, suspension: through signing_key_resolve."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from codex.commands import duration_parse
from codex.errors import DomainError
from tenants.errors import TenantError
from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import device_get, signing_key_resolve
from tenants.services.devices import device_revoke
from tenants.services.keys import signing_key_revoke, signing_key_rotate, signing_key_touch
from tenants.services.tenants import tenant_provision, tenant_resume, tenant_suspend


@pytest.fixture
def acme(db):
    """A provisioned tenant with devices front and back: (tenant, {device or None: key_id})."""
    result = tenant_provision(slug="acme", devices=["front", "back"], actor="test")
    with system_scope("test-check"):
        tenant = Tenant.objects.get(id=result.tenant_id)
    return tenant, {k.device: k.key_id for k in result.keys}


def _set_not_after(key_id: str, when) -> None:
    with system_scope("test-clock"):
        SigningKey.objects.filter(key_id=key_id).update(not_after=when)


def _call(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("24h", 86400), ("7d", 604800), ("0s", 0), ("1h30m", 5400), ("2w", 1209600)],
)
def test_duration_parse_accepts_units(text, seconds):
    assert duration_parse(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "h", "1x", "-5m", "5m junk"])
def test_duration_parse_rejects_garbage(text):
    with pytest.raises(DomainError, match="duration"):
        duration_parse(text)


def test_rotate_old_key_verifies_inside_overlap_and_not_after_it(acme):
    tenant, keys = acme
    old = keys[None]
    new = signing_key_rotate(tenant=tenant, overlap=timedelta(hours=24), actor="test")
    assert new.key_id != old
    assert new.secret.startswith("whsec_")
    assert new.device is None
    old_resolved = signing_key_resolve(old)
    assert old_resolved.secrets
    assert not old_resolved.revoked
    assert signing_key_resolve(new.key_id).secrets
    with system_scope("test-check"):
        row = SigningKey.objects.get(key_id=old)
    assert row.status == SigningKey.Status.ROTATED
    assert timedelta(hours=23, minutes=59) < row.not_after - timezone.now() <= timedelta(hours=24)
    # The overlap ends: moved into the past rather than waited for.
    _set_not_after(old, timezone.now() - timedelta(seconds=1))
    after = signing_key_resolve(old)
    assert after.revoked
    assert after.secrets == ()
    assert signing_key_resolve(new.key_id).secrets
    # Device keys were not touched by a tenant-key rotation.
    assert signing_key_resolve(keys["front"]).secrets


def test_rotate_zero_overlap_stops_old_key_at_once(acme):
    tenant, keys = acme
    signing_key_rotate(tenant=tenant, overlap=timedelta(0), actor="test")
    assert signing_key_resolve(keys[None]).revoked


def test_rotate_device_key_touches_only_that_device(acme):
    tenant, keys = acme
    front = device_get(tenant=tenant, name="front")
    new = signing_key_rotate(tenant=tenant, device=front, overlap=timedelta(hours=1), actor="t")
    assert new.device == "front"
    with system_scope("test-check"):
        statuses = dict(SigningKey.objects.values_list("key_id", "status"))
    assert statuses[keys["front"]] == SigningKey.Status.ROTATED
    assert statuses[keys["back"]] == SigningKey.Status.ACTIVE
    assert statuses[keys[None]] == SigningKey.Status.ACTIVE
    assert statuses[new.key_id] == SigningKey.Status.ACTIVE


def test_rotate_twice_keeps_first_keys_earlier_end(acme):
    tenant, keys = acme
    second = signing_key_rotate(tenant=tenant, overlap=timedelta(hours=1), actor="t")
    signing_key_rotate(tenant=tenant, overlap=timedelta(days=7), actor="t")
    with system_scope("test-check"):
        ends = dict(SigningKey.objects.values_list("key_id", "not_after"))
    assert ends[keys[None]] < timezone.now() + timedelta(hours=1, seconds=5)
    assert ends[second.key_id] > timezone.now() + timedelta(days=6)


def test_rotate_command_prints_new_key_once_and_audits(acme):
    tenant, keys = acme
    out = _call("rotate_signing_key", "acme", "--device", "back", "--overlap", "30m")
    assert "key_id: ck_" in out
    assert "secret: whsec_" in out
    new_key_id = out.split("key_id: ")[1].split()[0]
    assert signing_key_resolve(new_key_id).device == "back"
    with system_scope("test-check"):
        row = SigningKey.objects.get(key_id=keys["back"])
        audit = AuditLog.objects.get(action="signing_key.rotate")
    assert row.not_after - timezone.now() <= timedelta(minutes=30)
    assert audit.tenant_id == tenant.id
    assert audit.actor.startswith("cli:")
    assert audit.new["active"] == new_key_id
    assert audit.new["overlap_seconds"] == 1800
    assert "whsec_" not in str(audit.old) + str(audit.new)


def test_rotate_command_unknown_tenant_or_device_or_bad_overlap_fails(acme):
    with pytest.raises(CommandError, match="no tenant"):
        _call("rotate_signing_key", "nope")
    with pytest.raises(CommandError, match="no device"):
        _call("rotate_signing_key", "acme", "--device", "nope")
    with pytest.raises(CommandError, match="duration"):
        _call("rotate_signing_key", "acme", "--overlap", "soon")


def test_revoke_device_keys_stop_verifying_at_once_even_inside_an_overlap(acme):
    tenant, keys = acme
    front = device_get(tenant=tenant, name="front")
    rotated = signing_key_rotate(tenant=tenant, device=front, overlap=timedelta(days=1), actor="t")
    out = _call("revoke_device", "acme", "front")
    assert "2 key(s) stopped verifying" in out
    for key_id in (keys["front"], rotated.key_id):
        resolved = signing_key_resolve(key_id)
        assert resolved.revoked
        assert resolved.secrets == ()
    assert signing_key_resolve(keys["back"]).secrets
    assert signing_key_resolve(keys[None]).secrets
    with system_scope("test-check"):
        assert Device.objects.get(name="front").revoked_at is not None
        assert AuditLog.objects.filter(action="device.revoke").count() == 1
    # Again: nothing changes, no second audit row.
    assert "already revoked" in _call("revoke_device", "acme", "front")
    with system_scope("test-check"):
        assert AuditLog.objects.filter(action="device.revoke").count() == 1
    with pytest.raises(TenantError, match="revoked"):
        signing_key_rotate(tenant=tenant, device=front, overlap=timedelta(0), actor="t")


def test_revoke_device_unknown_device_fails(acme):
    with pytest.raises(CommandError, match="no device"):
        _call("revoke_device", "acme", "nope")


def test_revoked_device_rerun_of_provision_does_not_revive_it(acme):
    tenant, _ = acme
    device_revoke(tenant=tenant, name="front", actor="t")
    result = tenant_provision(slug="acme", devices=["front"], actor="t")
    assert not result.devices_added
    assert any("revoked" in note for note in result.notes)
    assert "front" not in {k.device for k in result.keys}


def test_signing_key_revoke_single_key(acme):
    tenant, keys = acme
    with tenant_scope(tenant.id):
        key = SigningKey.objects.get(key_id=keys["back"])
    assert signing_key_revoke(key=key, actor="t") is True
    assert signing_key_revoke(key=key, actor="t") is False
    assert signing_key_resolve(keys["back"]).revoked


def test_suspend_and_resume_tenant_flip_status_and_audit(acme):
    tenant, keys = acme
    assert tenant_suspend(tenant=tenant, actor="t") is True
    assert tenant_suspend(tenant=tenant, actor="t") is False
    resolved = signing_key_resolve(keys[None])
    assert resolved.tenant_active is False
    assert tenant_resume(tenant=tenant, actor="t") is True
    assert signing_key_resolve(keys[None]).tenant_active is True
    with system_scope("test-check"):
        actions = list(
            AuditLog.objects.filter(tenant=tenant).order_by("at").values_list("action", flat=True)
        )
    assert actions == ["tenant.provision", "tenant.suspend", "tenant.resume"]


def test_resolve_unknown_and_malformed_key_ids_return_none(acme):
    _tenant, keys = acme
    assert signing_key_resolve("nope") is None
    assert signing_key_resolve("ck_" + "0" * 32 + "_deadbeef") is None
    # Right tenant, wrong random part.
    assert signing_key_resolve(keys[None][:-4] + "0000") is None


def test_signing_key_touch_records_use_at_most_once_a_minute(acme):
    tenant, keys = acme
    signing_key_touch(tenant_id=tenant.id, key_id=keys[None])
    with system_scope("test-check"):
        first = SigningKey.objects.get(key_id=keys[None]).last_used_at
    assert first is not None
    signing_key_touch(tenant_id=tenant.id, key_id=keys[None])
    with system_scope("test-check"):
        assert SigningKey.objects.get(key_id=keys[None]).last_used_at == first
        SigningKey.objects.filter(key_id=keys[None]).update(
            last_used_at=timezone.now() - timedelta(minutes=2)
        )
    signing_key_touch(tenant_id=tenant.id, key_id=keys[None])
    with system_scope("test-check"):
        assert SigningKey.objects.get(key_id=keys[None]).last_used_at > first


def test_concurrent_rotations_of_one_owner_leave_exactly_one_active_key(transactional_db):
    import threading

    from django.db import connections

    from tenants.selectors import tenant_get
    from tenants.services.keys import signing_key_rotate
    from tenants.services.tenants import tenant_provision

    tenant_provision(slug="racer", devices=["till"], actor="test")
    tenant = tenant_get(slug="racer")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def rotate() -> None:
        try:
            start.wait()
            signing_key_rotate(tenant=tenant, overlap=timedelta(hours=1), actor="test")
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    with tenant_scope(tenant.id):
        active = SigningKey.objects.filter(
            tenant_id=tenant.id, device__isnull=True, status=SigningKey.Status.ACTIVE
        )
        assert active.count() == 1
        rotated = SigningKey.objects.filter(
            tenant_id=tenant.id, device__isnull=True, status=SigningKey.Status.ROTATED
        )
        assert rotated.count() == 4  # the original key and three of the four new ones


def test_key_uses_are_written_in_one_statement_per_flush_not_per_request(db, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants import auth
    from tenants.selectors import signing_key_resolve_cached
    from tests.factories import SigningKeyFactory, TenantFactory

    keys = [SigningKeyFactory(tenant=TenantFactory()) for _ in range(5)]
    resolved = [signing_key_resolve_cached(k.key_id) for k in keys]
    auth.touches_flush()
    monkeypatch.setattr(auth, "_touch_next_flush", float("inf"))  # not due: only noted
    with CaptureQueriesContext(connection) as noted:
        for key in resolved:
            auth._touch(key)
    assert not [q for q in noted.captured_queries if "tenants_signingkey" in q["sql"]]
    with CaptureQueriesContext(connection) as flushed:
        auth.touches_flush()
    updates = [q for q in flushed.captured_queries if "UPDATE tenants_signingkey" in q["sql"]]
    assert len(updates) == 1
    with system_scope("test-check"):
        used = SigningKey.objects.filter(key_id__in=[k.key_id for k in keys])
        assert all(k.last_used_at is not None for k in used)
