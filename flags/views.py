"""GET /config: the caller's tenant's runtime config, signed like /v1/events, with ETag/304."""

from __future__ import annotations

import hashlib
import json

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.throttle import SignedReadThrottle
from flags import metrics
from flags.selectors import CACHE_TTL_SEC, effective_flags_cached, public_config
from tenants.auth import SignedRequestMixin

CACHE_CONTROL = f"private, max-age={CACHE_TTL_SEC}"


def config_etag(document: dict) -> str:
    """A strong ETag for a config document (same values -> same tag, on every server)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(canonical).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison against a list of tags, or `*`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in tags


class ConfigThrottle(SignedReadThrottle):
    """GET /config: configRatePerSec requests per second per signing key (runtime flag)."""

    group = "config"
    what = "config reads"

    def limit_for(self, key) -> int:
        return int(effective_flags_cached(tenant_id=key.tenant_id)["configRatePerSec"])


class ConfigView(SignedRequestMixin, APIView):
    """The effective syncEnabled / minIntervalSec / retryCap for the signing key's tenant."""

    throttle_classes = [ConfigThrottle]

    def get(self, request):
        key = request.auth
        document = public_config(tenant_id=key.tenant_id)
        etag = config_etag(document)
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "X-Codex-Key-Id"}
        if etag_matches(request.headers.get("If-None-Match", ""), etag):
            metrics.CONFIG_READS.labels(tenant=key.tenant_slug, outcome="not_modified").inc()
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        metrics.CONFIG_READS.labels(tenant=key.tenant_slug, outcome="ok").inc()
        return Response(document, headers=headers)

    def handle_exception(self, exc):
        """Count refused and failed reads too (tenant label only when the key was resolved)."""
        response = super().handle_exception(exc)
        auth = getattr(self.request, "_auth", None)
        tenant = getattr(auth, "tenant_slug", None) or "unknown"
        outcome = "error" if response.status_code >= 500 else "denied"
        if response.status_code == 429:
            outcome = "rate_limited"
        metrics.CONFIG_READS.labels(tenant=tenant, outcome=outcome).inc()
        return response
