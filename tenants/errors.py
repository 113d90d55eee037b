"""Errors of the tenants app: DomainErrors whose messages are safe to show an operator."""

from __future__ import annotations

from codex.errors import DomainError


class TenantError(DomainError):
    """An operator request about tenants, devices or keys that cannot be carried out."""

    def __init__(self, message: str, *, code: str = "tenant_error", status_code: int = 400):
        super().__init__(code, message, status_code=status_code)


class TenantNotFound(TenantError):
    """No tenant (or no device of the tenant) by that name."""

    def __init__(self, message: str, *, code: str = "tenant_not_found"):
        super().__init__(message, code=code, status_code=404)


class SourceError(TenantError):
    """An operator request about a source that cannot be carried out (safe to show)."""

    def __init__(self, message: str):
        super().__init__(message, code="source_error")


class TenantOffboarded(TenantError):
    """The tenant is offboarded (or being offboarded): it gets nothing back, ever."""

    def __init__(self, message: str):
        super().__init__(message, code="tenant_offboarded", status_code=409)
