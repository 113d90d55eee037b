"""WSGI entry point for gunicorn: the signed API runs through a shorter middleware chain.

`POST /v1/...` and `GET /config` are answered by a Django handler whose middleware is only
`API_MIDDLEWARE` (request context, CORS for browser apps, security headers): sessions, messages,
CSRF, auth, clickjacking and WhiteNoise do nothing for a signed JSON API and cost every request.
Everything else (the admin, health, metrics, static files) goes through the full
`settings.MIDDLEWARE`.
"""

import os
from pathlib import Path

import django
from django.core.handlers.wsgi import WSGIHandler
from django.urls import ResolverMatch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from codex.logconfig import records_lean  # noqa: E402

records_lean()  # the web process: its log lines never print caller, thread or process

API_MIDDLEWARE = [
    "codex.middleware.RequestContextMiddleware",
    # Browser apps: CORS preflights and headers for the tenant's allowedOrigins (ingest/cors.py).
    "ingest.cors.SignedEndpointsCorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
]


def is_api_path(path: str) -> bool:
    """True for the paths the lean handler answers."""
    return path.startswith("/v1/") or path == "/config"


class ApiHandler(WSGIHandler):
    """Django's WSGI handler built with API_MIDDLEWARE instead of settings.MIDDLEWARE.

    It also resolves each exact API path once: `/v1/events` matched anew on every request (the
    root URLconf's patterns in order, a new ResolverMatch) cost 12 us in process, 4.6% of a
    worker's GIL samples under load. The kept match is shared read-only, as Django's own are.
    """

    # Paths whose match takes no arguments (the route is the path): at most a handful here.
    _MATCHES_MAX = 64

    def __init__(self) -> None:
        self._matches: dict[str, ResolverMatch] = {}
        super().__init__()

    def resolve_request(self, request):
        if hasattr(request, "urlconf"):  # a middleware chose another URLconf: Django's way
            return super().resolve_request(request)
        match = self._matches.get(request.path_info)
        if match is None:
            match = super().resolve_request(request)  # Resolver404 for an unknown path: not kept
            if not (match.args or match.kwargs) and len(self._matches) < self._MATCHES_MAX:
                self._matches[request.path_info] = match
            return match
        request.resolver_match = match
        return match

    def load_middleware(self, is_async=False):
        # BaseHandler reads settings.MIDDLEWARE; swap it only while this chain is built (once,
        # at start, before any request), so the rest of Django keeps seeing the full list.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def static_manifest_check() -> None:
    """Staging/production refuse to start without collectstatic's manifest.

    Without it every admin page is a 500 ("Missing staticfiles manifest entry"), and nothing
    else would say so until an operator opens one.
    """
    if settings.CODEX_ENV not in ("staging", "production"):
        return
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.is_file():
        raise ImproperlyConfigured(
            f"{manifest} is missing: run `python manage.py collectstatic --no-input` before "
            "starting the web service (the image does it at build time)"
        )


class Application:
    """Route each request to the lean API handler or to Django's full one."""

    def __init__(self) -> None:
        static_manifest_check()
        self.full = WSGIHandler()
        self.api = ApiHandler()

    def __call__(self, environ, start_response):
        handler = self.api if is_api_path(environ.get("PATH_INFO", "")) else self.full
        return handler(environ, start_response)


application = Application()
