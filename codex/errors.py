"""One error model and one mapping: DomainError (a registry entry) into every kind of answer.

Every error code is an entry of codex/error_codes.py (code, HTTP status, default message, the
headers it carries). Services raise by entry (`raise codes.TENANT_SUSPENDED.error()`), never an
HTTP-layer exception and never a status or header. This module is the one mapping from there:
the JSON document {"error": {"code", "message", "rid"}} of views, the DRF handler, the webhook
view and health; `operator_message` for the admin; codex.commands.DomainCommand for commands
(CommandError). It also maps a database outage (OperationalError, InterfaceError, a write on a
read-only standby) to 503 `unavailable`, and exceptions of modules that predate the registry
(`answer_as`) to their entry.
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
from codex import error_codes as codes
from codex.error_codes import DomainError, DomainValueError, ErrorCode

__all__ = [
    "ApiError",
    "DomainError",
    "DomainValueError",
    "ErrorCode",
    "Unavailable",
    "answer_as",
    "api_exception_handler",
    "domain_error",
    "domain_error_response",
    "error_body",
    "error_response",
    "operator_message",
]

logger = logging.getLogger(__name__)


class Unavailable(DomainError):
    """A dependency (PostgreSQL, the key store) cannot answer now: 503 with Retry-After."""

    def __init__(self, message: str | None = None, *, retry_after: int = 5):
        super().__init__(codes.UNAVAILABLE, message, retry_after=retry_after)


class ApiError(DomainError, exceptions.APIException):
    """A DomainError that is also a DRF APIException: raised by authenticators and throttles.

    DRF's authentication treats an APIException raised by an authenticator as a refused request
    (request.user and request.auth set to their unauthenticated values).
    """

    def __init__(self, entry: ErrorCode | str, message: str | None = None, **kwargs):
        # DomainError's arguments as they are (status_code=, headers=, header values).
        DomainError.__init__(self, entry, message, **kwargs)
        exceptions.APIException.__init__(self, detail=self.message, code=self.code)


# Exceptions of modules that do not derive from DomainError yet, and the entry each answers as.
_ANSWERS_AS: dict[type[BaseException], ErrorCode] = {}


def answer_as(exc_type: type[BaseException], entry: ErrorCode) -> None:
    """Let the one mapping answer `exc_type` as `entry` (its message is the exception's text)."""
    _ANSWERS_AS[exc_type] = entry


def domain_error(exc: BaseException) -> DomainError | None:
    """The DomainError an exception is answered as over HTTP, or None for a failure that is a 500.

    The one place that maps a database outage to 503 `unavailable`, an exception registered with
    `answer_as` to its entry, and an operator-side failure (SECRET_UNDECRYPTABLE) to the entry
    the API shows for it: the client learns "retry later", the log and the operator the cause.
    """
    if isinstance(exc, DomainError):
        error = exc
    elif isinstance(exc, (OperationalError, InterfaceError)) or _read_only_server(exc):
        logger.warning("database unavailable", exc_info=exc)
        return Unavailable()
    else:
        entry = next((e for t, e in _ANSWERS_AS.items() if isinstance(exc, t)), None)
        if entry is None:
            return None
        error = entry.error(str(exc) or None)
    public = error.entry.answers_as
    if public is None:
        return error
    logger.warning("%s answered as %s", error.code, public.code, exc_info=exc)
    return public.error(error.entry.answer_message or None, headers=error.headers)


def operator_message(exc: DomainError) -> str:
    """What an operator is shown for a DomainError (a command's CommandError, an admin message)."""
    return exc.message


def _read_only_server(exc: BaseException) -> bool:
    """A write reached a server that is (still, or again) a standby: a failover under way.

    Patroni restarts a crashed primary read-only before it promotes it, and a demoted primary
    keeps its sessions until the proxy cuts them; a write there fails with SQLSTATE 25006
    (read_only_sql_transaction), which is a retryable 503, not a 500 (docs/ha.md).
    """
    cause = exc.__cause__ if isinstance(exc, InternalError) else None
    return getattr(cause, "sqlstate", None) == "25006"


# DRF's own exceptions mapped to our entries (DRF keeps their status and headers).
_DRF_CODES = {
    exceptions.ParseError: codes.MALFORMED_JSON,
    exceptions.UnsupportedMediaType: codes.UNSUPPORTED_MEDIA_TYPE,
    exceptions.MethodNotAllowed: codes.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: codes.NOT_ACCEPTABLE,
    exceptions.NotFound: codes.NOT_FOUND,
    exceptions.Throttled: codes.RATE_LIMITED,
    exceptions.NotAuthenticated: codes.MISSING_SIGNATURE,
    exceptions.AuthenticationFailed: codes.INVALID_SIGNATURE,
    exceptions.PermissionDenied: codes.FORBIDDEN,
    exceptions.ValidationError: codes.INVALID_REQUEST,
}


def error_body(code: ErrorCode | str, message: str) -> dict:
    """The error document for the current request."""
    if isinstance(code, ErrorCode):
        code = code.code
    return {"error": {"code": code, "message": message, "rid": context.request_id.get()}}


def error_response(
    code: ErrorCode | str,
    message: str | None = None,
    status_code: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """A plain Django JSON error response of a registry entry (non-DRF views and handlers)."""
    return domain_error_response(
        DomainError(code, message, status_code=status_code, headers=headers)
    )


def domain_error_response(error: DomainError) -> JsonResponse:
    """A DomainError as a plain Django JSON response (the views that skip DRF)."""
    response = JsonResponse(error_body(error.code, error.message), status=error.status_code)
    for key, value in error.headers.items():
        response[key] = value
    return response


def api_exception_handler(exc, ctx):
    """DRF exception handler: DomainErrors, database outages and DRF's own, in our format."""
    error = domain_error(exc)
    if error is not None:
        set_rollback()
        return Response(
            error_body(error.code, error.message),
            status=error.status_code,
            headers=error.headers,
        )
    response = drf_exception_handler(exc, ctx)
    if response is None:
        return None  # not an API exception: Django's 500 handler answers
    entry = next((e for cls, e in _DRF_CODES.items() if isinstance(exc, cls)), None)
    code = entry.code if entry is not None else codes.INTERNAL_ERROR.code
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
    return error_response(codes.BAD_REQUEST)


def handler403(request, exception=None):
    """Django's 403 outside DRF."""
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return error_response(codes.FORBIDDEN)


def handler404(request, exception=None):
    """Unknown paths answer JSON, never an HTML page (the admin keeps its own pages)."""
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return error_response(codes.NOT_FOUND, f"No endpoint at {request.path}.")


def handler500(request):
    """Unexpected failures: JSON with the rid so the log line can be found."""
    if _is_admin(request):
        return defaults.server_error(request)
    return error_response(codes.INTERNAL_ERROR)


def csrf_failure(request, reason=""):
    """CSRF rejections in the error format (admin forms still get Django's page via admin)."""
    return error_response(codes.CSRF_FAILED, f"CSRF verification failed: {reason}")
