"""tests.factories: every factory writes a row its tenant's scope can read (or a system scope)."""

from __future__ import annotations

import pytest

from flags.models import FlagChange, GlobalFlag, TenantFlag
from ingest.models import DeadLetter, EnrichedEvent, Event, IdempotencyKey, IngestWarning
from reconcile.models import ReconcileRun, SourceReconcileRun
from tenants.models import AuditLog, Device, SigningKey, WebhookSource
from tenants.scope import system_scope, tenant_scope
from tests import factories

TENANT_OWNED = [
    (factories.DeviceFactory, Device),
    (factories.TenantFlagFactory, TenantFlag),
    (factories.EventFactory, Event),
    (factories.IdempotencyKeyFactory, IdempotencyKey),
    (factories.EnrichedEventFactory, EnrichedEvent),
    (factories.DeadLetterFactory, DeadLetter),
    (factories.IngestWarningFactory, IngestWarning),
    (factories.ReconcileRunFactory, ReconcileRun),
    (factories.SourceReconcileRunFactory, SourceReconcileRun),
]


@pytest.mark.parametrize(("factory", "model"), TENANT_OWNED, ids=lambda v: v.__name__)
def test_a_tenant_owned_factory_writes_a_row_its_tenant_sees_and_no_other(db, factory, model):
    tenant, other = factories.TenantFactory(), factories.TenantFactory()
    row = factory(tenant=tenant)
    assert row.tenant_id == tenant.id
    with tenant_scope(tenant.id):
        assert model.objects.filter(pk=row.pk).exists()
    with tenant_scope(other.id):
        assert not model.objects.filter(pk=row.pk).exists()


def test_service_made_rows_come_back_with_their_clear_secrets(db):
    tenant = factories.TenantFactory()
    key = factories.SigningKeyFactory(tenant=tenant)
    device_key = factories.SigningKeyFactory(
        tenant=tenant, device=factories.DeviceFactory(tenant=tenant)
    )
    source = factories.WebhookSourceFactory(tenant=tenant, kind="stripe")
    assert key.secret.startswith("whsec_")
    assert device_key.key_id != key.key_id
    with tenant_scope(tenant.id):
        assert SigningKey.objects.filter(tenant_id=tenant.id).count() == 2
        assert WebhookSource.objects.get(source_id=source.source_id).kind == "stripe"


def test_platform_wide_factories_write_in_a_system_scope(db):
    tenant = factories.TenantFactory()
    factories.AuditLogFactory(tenant=None, action="test.platform")
    factories.AuditLogFactory(tenant=tenant, action="test.tenant")
    factories.GlobalFlagFactory(key="retryCap", value=4)
    factories.FlagChangeFactory(tenant=None, key="retryCap", new=4)
    with system_scope("test"):
        assert set(AuditLog.objects.values_list("action", flat=True)) >= {
            "test.platform",
            "test.tenant",
        }
        assert GlobalFlag.objects.get(key="retryCap").value == 4
        assert FlagChange.objects.filter(tenant=None, key="retryCap").exists()


def test_user_factory_makes_staff_or_superusers_that_can_log_in(db, client):
    staff = factories.UserFactory()
    root = factories.UserFactory(is_superuser=True, password="s3cret")
    assert (staff.is_staff, staff.is_superuser) == (True, False)
    assert (root.is_staff, root.is_superuser) == (True, True)
    assert client.login(username=root.username, password="s3cret")
