"""GET /api/schema/ and /api/docs/: staff only when deployed, the schema generated once.

In staging and production the description and Swagger UI answer logged-in staff (the admin's
session) only, unless `CODEX_PUBLIC_API_DOCS` is on: anonymous readers of /api/docs/ are sent to
the admin login (302), /api/schema/ answers 403 `forbidden`. Elsewhere (development, tests) both
are public. The schema is built from the code, which does not change while a process runs, so it
is generated once per API version and language and kept (docs/api.md).
"""

from __future__ import annotations

from functools import lru_cache, wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils.translation import get_language
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.response import Response

from codex import error_codes as codes
from codex.errors import error_response

GATED_ENVIRONMENTS = frozenset({"staging", "production"})


def api_docs_visible(request) -> bool:
    """True when this request may read the API description (see the module docstring)."""
    if settings.CODEX_PUBLIC_API_DOCS or settings.CODEX_ENV not in GATED_ENVIRONMENTS:
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


@lru_cache(maxsize=16)
def schema_cached(version: str | None, language: str | None) -> dict:
    """The generated OpenAPI description (once per process, API version and language)."""
    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS(api_version=version)
    return generator.get_schema(request=None, public=True)


class CachedSchemaView(SpectacularAPIView):
    """drf-spectacular's schema view over the per-process cached description."""

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        filename = self._get_filename(request, version)
        return Response(
            data=schema_cached(version, get_language()),
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )


def _staff_only(view, *, login_redirect: bool):
    @wraps(view)
    def gated(request, *args, **kwargs):
        if api_docs_visible(request):
            return view(request, *args, **kwargs)
        user = getattr(request, "user", None)
        if login_redirect and not (user is not None and user.is_authenticated):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return error_response(
            codes.FORBIDDEN, "The API description is for staff: log in to the admin first."
        )

    return gated


schema_view = _staff_only(CachedSchemaView.as_view(), login_redirect=False)
docs_view = _staff_only(SpectacularSwaggerView.as_view(url_name="schema"), login_redirect=True)
