"""One error format for the whole API: {"error": {"code", "message", "rid"}}."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from codex import context

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An API error with a stable machine-readable code and optional extra headers."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, headers=None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.headers = headers or {}


# DRF's own exceptions mapped to our stable codes.
_DRF_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.NotFound: "not_found",
    exceptions.Throttled: "rate_limited",
    exceptions.NotAuthenticated: "missing_signature",
    exceptions.AuthenticationFailed: "invalid_signature",
    exceptions.PermissionDenied: "forbidden",
    exceptions.ValidationError: "invalid_request",
}


def error_body(code: str, message: str) -> dict:
    """The error document for the current request."""
    return {"error": {"code": code, "message": message, "rid": context.request_id.get()}}


def error_response(code: str, message: str, status_code: int, headers=None) -> JsonResponse:
    """A plain Django JSON error response (for non-DRF views and handlers)."""
    response = JsonResponse(error_body(code, message), status=status_code)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def api_exception_handler(exc, ctx):
    """DRF exception handler rendering every APIException in our format."""
    response = drf_exception_handler(exc, ctx)
    if response is None:
        return None  # not an API exception: Django's 500 handler answers
    if isinstance(exc, ApiError):
        code = exc.error_code
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail
    message = _flatten(detail) if isinstance(detail, (list, dict)) else str(detail)
    response.data = error_body(code, message)
    for key, value in getattr(exc, "headers", {}).items():
        response[key] = value
    return response


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(v) for v in detail)
    return str(detail)


def _is_admin(request) -> bool:
    return request.path.startswith("/admin/")


def handler400(request, exception=None):
    """Django's 400 (e.g. a bad Host or a body over the upload limit)."""
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return error_response("bad_request", "The request could not be understood.", 400)


def handler403(request, exception=None):
    """Django's 403 outside DRF."""
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return error_response("forbidden", "Forbidden.", 403)


def handler404(request, exception=None):
    """Unknown paths answer JSON, never an HTML page (the admin keeps its own pages)."""
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return error_response("not_found", f"No endpoint at {request.path}.", 404)


def handler500(request):
    """Unexpected failures: JSON with the rid so the log line can be found."""
    if _is_admin(request):
        return defaults.server_error(request)
    return error_response("internal_error", "Internal error; quote the rid when reporting.", 500)


def csrf_failure(request, reason=""):
    """CSRF rejections in the error format (admin forms still get Django's page via admin)."""
    return error_response("csrf_failed", f"CSRF verification failed: {reason}", 403)


def unavailable(message: str, retry_after: int = 5) -> Response:
    """503 while a dependency is down."""
    return Response(
        error_body("unavailable", message),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(retry_after)},
    )
