"""Errors of the tenants app: DomainErrors bound to registry entries (codex/error_codes.py)."""

from __future__ import annotations

from codex import error_codes as codes
from codex.errors import DomainError


class TenantError(DomainError):
    """An operator request about tenants, devices or keys that cannot be carried out.

    `TenantError(message)` is `tenant_error`; `code=` names another registered entry (its status
    is the registry's; `status_code`, if given, must agree with it).
    """

    def __init__(
        self, message: str, *, code: str = codes.TENANT_ERROR.code, status_code: int | None = None
    ):
        super().__init__(code, message, status_code=status_code)


class TenantNotFound(TenantError):
    """No tenant (or no device of the tenant) by that name."""

    def __init__(self, message: str, *, code: str = codes.TENANT_NOT_FOUND.code):
        super().__init__(message, code=code)


class SourceError(TenantError):
    """An operator request about a source that cannot be carried out (safe to show)."""

    def __init__(self, message: str):
        super().__init__(message, code=codes.SOURCE_ERROR.code)


class TenantOffboarded(TenantError):
    """The tenant is offboarded (or being offboarded): it gets nothing back, ever."""

    def __init__(self, message: str):
        super().__init__(message, code=codes.TENANT_OFFBOARDED.code)
