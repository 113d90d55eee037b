"""One error model: DomainError (code, message, HTTP status) and one format for every answer.

Every error the apps raise on purpose derives from DomainError: services raise it (or an app's
subclass: TenantError, FlagValueError, ...), never an HTTP-layer exception. The edge turns it into
the one JSON document {"error": {"code", "message", "rid"}} here, in one place, which also maps a
database outage (OperationalError, InterfaceError, a write on a read-only standby) to 503
`unavailable`. Management commands turn it into CommandError through codex.commands.DomainCommand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import InterfaceError, InternalError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from codex import context

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A request that cannot be carried out: a stable code, a message safe to show, a status.

    `status_code` is the HTTP status the API answers with; `headers` go with that answer
    (Retry-After, WWW-Authenticate). Commands show only the message.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = 400,
        headers: Mapping[str, str] | None = None,
    ):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return self.message


class Unavailable(DomainError):
    """A dependency (PostgreSQL, the key store) cannot answer now: 503 with Retry-After."""

    def __init__(
        self, message: str = "The event store is unavailable; retry later.", *, retry_after: int = 5
    ):
        super().__init__(
            "unavailable", message, status_code=503, headers={"Retry-After": str(retry_after)}
        )


class ApiError(DomainError, exceptions.APIException):
    """A refusal decided by the HTTP edge itself (authentication, request parsing, views).

    Also a DRF APIException, so DRF's authentication treats one raised by an authenticator as a
    refused request.
    """

    def __init__(self, code: str, message: str, *, status_code: int = 400, headers=None):
        DomainError.__init__(self, code, message, status_code=status_code, headers=headers)
        exceptions.APIException.__init__(self, detail=message, code=code)


def domain_error(exc: BaseException) -> DomainError | None:
    """The DomainError an exception answers as, or None for a failure that is a 500.

    The one place that maps a database outage to 503 `unavailable`.
    """
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, (OperationalError, InterfaceError)) or _read_only_server(exc):
        logger.warning("database unavailable", exc_info=exc)
        return Unavailable()
    return None


def _read_only_server(exc: BaseException) -> bool:
    """A write reached a server that is (still, or again) a standby: a failover under way.

    Patroni restarts a crashed primary read-only before it promotes it, and a demoted primary
    keeps its sessions until the proxy cuts them; a write there fails with SQLSTATE 25006
    (read_only_sql_transaction), which is a retryable 503, not a 500 (docs/ha.md).
    """
    cause = exc.__cause__ if isinstance(exc, InternalError) else None
    return getattr(cause, "sqlstate", None) == "25006"


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


def domain_error_response(error: DomainError) -> JsonResponse:
    """A DomainError as a plain Django JSON response (the views that skip DRF)."""
    return error_response(error.code, error.message, error.status_code, error.headers)


def api_exception_handler(exc, ctx):
    """DRF exception handler: DomainErrors, database outages and DRF's own, in our format."""
    error = domain_error(exc)
    if error is not None:
        set_rollback()
        return Response(
            error_body(error.code, error.message), status=error.status_code, headers=error.headers
        )
    response = drf_exception_handler(exc, ctx)
    if response is None:
        return None  # not an API exception: Django's 500 handler answers
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
