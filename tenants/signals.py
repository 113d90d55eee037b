"""Signals of the tenants app: higher apps add their part without tenants importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside tenant_provision's transaction right after a tenant is created, with
# tenant_id, actor and user. A receiver may return a short note for the provisioning report;
# an exception rolls the whole provisioning back. (flags sets up runtime flags here.)
tenant_provisioned = Signal()
