"""Errors of the reconcile app: DomainErrors bound to registry entries (codex/error_codes.py)."""

from __future__ import annotations

from codex import error_codes as codes
from codex.errors import DomainError


class ReconcileError(DomainError):
    """A reconcile that cannot run as asked (a day not started yet, no source to compare).

    `code=` names the registered entry (default `reconcile_error`).
    """

    def __init__(self, message: str, *, code: str = codes.RECONCILE_ERROR.code):
        super().__init__(code, message)
