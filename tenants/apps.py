"""AppConfig for tenants."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Tenants, devices, signing keys and row-level security."""

    name = "tenants"
