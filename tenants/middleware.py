"""Admin requests run in an explicit, named system scope (operators see every tenant)."""

from __future__ import annotations

from tenants.scope import system_scope


class AdminSystemScopeMiddleware:
    """Wrap /admin/ requests in system_scope("admin"); everything else is untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        with system_scope("admin"):
            return self.get_response(request)
