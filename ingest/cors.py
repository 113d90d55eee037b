"""CORS for the signed endpoints (/v1/events, the event lookup, /config): browser apps of a tenant.

A tenant lists the origins of its web apps in the runtime flag allowedOrigins (empty by default:
nothing changes for a tenant that sets none). Preflights (OPTIONS with
Access-Control-Request-Method) carry no signature and so name no tenant: they are answered here,
before any view, for an origin that some tenant allows, and cached by the browser for
PREFLIGHT_MAX_AGE seconds. An actual response carries Access-Control-Allow-Origin only when the
origin is in the allowedOrigins of the tenant whose key signed the request (the tenant bound by
tenants.auth); a request that names no tenant (a 401) gets it for an origin some tenant allows,
so the SDK can read the error (clock skew, a revoked key). CORS is not authentication here: the
API takes no cookies, the signature is what authorises a request.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

from codex import context
from flags.selectors import effective_flags_cached, origins_allowed_anywhere

# The lookup's key may hold any character, "/" included (sent as %2F, routed decoded).
SIGNED_PATHS = re.compile(r"^/(?:v1/events(?:/.+)?|config)$", re.DOTALL)
PREFLIGHT_MAX_AGE = 600
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = (
    "Content-Type, X-Codex-Key-Id, webhook-id, webhook-timestamp, webhook-signature, "
    "If-None-Match, X-Request-ID"
)
EXPOSE_HEADERS = (
    "ETag, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID, Date, WWW-Authenticate, "
    "Cache-Control"
)


def _vary(response: HttpResponse) -> None:
    vary = response.get("Vary", "")
    if "origin" not in vary.lower():
        response["Vary"] = f"{vary}, Origin" if vary else "Origin"


def origin_allowed(origin: str, tenant_id: str | None) -> bool:
    """Whether `origin` may read this response: the tenant's list, or any tenant's without one."""
    if tenant_id is None:
        return origin in origins_allowed_anywhere()
    allowed = effective_flags_cached(tenant_id=tenant_id).get("allowedOrigins")
    return isinstance(allowed, list) and origin in allowed


class SignedEndpointsCorsMiddleware:
    """Answer preflights and add CORS headers on the signed endpoints (docs/api.md, CORS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.META.get("HTTP_ORIGIN")
        if not origin or not SIGNED_PATHS.match(request.path_info):
            return self.get_response(request)
        if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META:
            return self._preflight(request, origin)
        response = self.get_response(request)
        _vary(response)
        if origin_allowed(origin, context.tenant_id.get()):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    def _preflight(self, request: HttpRequest, origin: str) -> HttpResponse:
        response = HttpResponse(status=204)
        _vary(response)
        method = request.META["HTTP_ACCESS_CONTROL_REQUEST_METHOD"]
        if method in ("GET", "POST") and origin in origins_allowed_anywhere():
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response
