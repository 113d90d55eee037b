"""Errors of the reconcile app: DomainErrors whose messages are safe to show an operator."""

from __future__ import annotations

from codex.errors import DomainError


class ReconcileError(DomainError):
    """A reconcile that cannot run as asked (a day not started yet, no source to compare)."""

    def __init__(self, message: str, *, code: str = "reconcile_error"):
        super().__init__(code, message)
