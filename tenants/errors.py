"""Errors of the tenants app."""

from __future__ import annotations


class TenantError(Exception):
    """An operator request that cannot be carried out (message is safe to show)."""
