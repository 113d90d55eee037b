"""Reads of the tenants app that the hot path makes."""

from __future__ import annotations

from tenants import keycache
from tenants.services import ResolvedKey, signing_key_resolve


def signing_key_resolve_cached(key_id: str) -> ResolvedKey | None:
    """signing_key_resolve, answered from this process's key cache while the entry is fresh.

    A database outage raises (OperationalError) and caches nothing.
    """
    found = keycache.get(key_id)
    if found is not keycache.MISSING:
        return found
    resolved = signing_key_resolve(key_id)
    keycache.put(key_id, resolved)
    return resolved
