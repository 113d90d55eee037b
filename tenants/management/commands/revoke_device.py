"""`revoke_device SLUG NAME`: the device's keys stop verifying at once."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor
from tenants.selectors import tenant_get
from tenants.services.devices import device_revoke


class Command(DomainCommand):
    """Thin edge over tenants.services.devices.device_revoke."""

    help = "Revoke a tenant's device and every key it has, effective immediately."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name", help="device name")

    def handle(self, *args, **options):
        tenant = tenant_get(slug=options["slug"])
        device, revoked = device_revoke(tenant=tenant, name=options["name"], actor=cli_actor())
        if revoked:
            self.stdout.write(
                f"Device {tenant.slug}/{device.name} revoked at "
                f"{device.revoked_at:%Y-%m-%d %H:%M:%S} UTC; {revoked} key(s) stopped verifying."
            )
        else:
            self.stdout.write(
                f"Device {tenant.slug}/{device.name} was already revoked; nothing changed."
            )
