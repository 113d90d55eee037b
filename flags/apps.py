"""AppConfig for flags."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_global_rows(sender, using="default", **_):
    """After migrate (and test flushes) every registered flag has its global row."""
    from flags.services import flags_global_rows_ensure

    flags_global_rows_ensure(using=using)


def _tenant_provisioned(sender, *, tenant_id, actor, user=None, **_) -> str:
    """tenants' provisioning of a new tenant: its runtime-flag set-up, in the same transaction."""
    from flags.services import flags_provision_tenant

    flags_provision_tenant(tenant_id=tenant_id, actor=actor, user=user)
    return "runtime flags set up (flags.services.flags_provision_tenant)"


class FlagsConfig(AppConfig):
    """Runtime flags and the /config endpoint."""

    name = "flags"

    def ready(self):
        """Global flag rows after every migrate, new tenants' flags, flags' deletion entries."""
        from flags import deletions
        from tenants.signals import tenant_provisioned

        deletions.register()
        post_migrate.connect(_ensure_global_rows, sender=self)
        tenant_provisioned.connect(_tenant_provisioned, dispatch_uid="flags.tenant_provisioned")
