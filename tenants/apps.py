"""AppConfig for tenants."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Tenants, devices, signing keys and row-level security."""

    name = "tenants"

    def ready(self) -> None:
        """What offboarding and erasure delete from its tables (tenants/deletions.py)."""
        from tenants import deletions

        deletions.register()
