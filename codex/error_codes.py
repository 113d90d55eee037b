"""The error registry: every error code the API, the admin and the commands can produce, once.

An entry (ErrorCode) says the code, the HTTP status, the default message, which headers the
answer carries (names only: the raise site supplies values such as the retry seconds) and, for
the documentation, when it happens. Services raise by entry and never choose a status or a
header themselves::

    raise codes.TENANT_SUSPENDED.error()
    raise codes.RATE_LIMITED.error(f"More than {n} deliveries per second.", retry_after=2)

codex.errors turns a DomainError into the API's JSON answer, a command's CommandError or an admin
message. docs/api.md's error tables and the OpenAPI `ErrorCode` enum are checked against this
module (tests/codex/test_errors_registry.py), so a code cannot go undocumented.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Keyword names a raise site gives header values by (retry_after=5), and the header each names.
HEADER_ARGS = {
    "retry_after": "Retry-After",
    "www_authenticate": "WWW-Authenticate",
    "allow": "Allow",
    "ratelimit_policy": "RateLimit-Policy",
    "ratelimit": "RateLimit",
}
_NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True, eq=False, slots=True)
class ErrorCode:
    """One error: stable code, HTTP status, default message, the headers its answer carries."""

    code: str
    status: int
    message: str
    when: str  # the docs' "When" column
    headers: tuple[str, ...] = ()
    # Header values used when the raise site gives none (Retry-After of a 503).
    defaults: Mapping[str, str] = field(default_factory=dict)
    # False: only commands and the admin produce it (no HTTP answer carries it).
    api: bool = True
    # An operator-side failure the API answers as another entry (with that answer's message):
    # the client learns "unavailable, retry", the operator the cause.
    answers_as: ErrorCode | None = None
    answer_message: str = ""

    def error(
        self, message: str | None = None, /, *, headers: Mapping[str, str] | None = None, **values
    ) -> DomainError:
        """The DomainError of this entry; header values by keyword (retry_after=...) or mapping."""
        return DomainError(self, message, headers=headers, **values)

    def __repr__(self) -> str:
        return f"<ErrorCode {self.code} {self.status}>"


REGISTRY: dict[str, ErrorCode] = {}


def _entry(code: str, status: int, message: str, when: str, **kwargs) -> ErrorCode:
    if code in REGISTRY:
        raise ValueError(f"error code {code!r} is registered twice")
    entry = ErrorCode(code, status, message, when, **kwargs)
    REGISTRY[code] = entry
    return entry


def strict() -> bool:
    """Unknown codes and undeclared headers raise (development, tests) instead of being logged."""
    from django.conf import settings

    return getattr(settings, "CODEX_ENV", "development") not in ("staging", "production")


class DomainError(Exception):
    """A request that cannot be carried out: a registry entry, a message safe to show, headers.

    `DomainError(codes.X, "message", retry_after=5)` or `codes.X.error(...)`. The old form
    `DomainError("code", "message", status_code=..., headers=...)` still works for a registered
    code with its registered status (anything else raises in development and tests).
    """

    def __init__(
        self,
        entry: ErrorCode | str,
        message: str | None = None,
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        **values,
    ):
        if not isinstance(entry, ErrorCode):
            entry = entry_for(entry, status_code)
        elif status_code is not None and status_code != entry.status:
            _refuse(f"{entry.code} answers {entry.status}, not {status_code}")
        message = entry.message if message is None else message
        Exception.__init__(self, message)
        self.entry = entry
        self.code = entry.code
        self.message = message
        self.status_code = entry.status
        if values:
            built = dict(headers or entry.defaults)
            for name, value in values.items():
                header = HEADER_ARGS.get(name)
                if header is None:
                    raise TypeError(f"unknown header argument {name!r}")
                built[header] = str(value)
            headers = built
        elif headers is None:
            headers = entry.defaults or _NO_HEADERS
        for header in headers:
            if header not in entry.headers:
                _refuse(f"{entry.code} does not carry {header}")
        # Read-only: a prebuilt mapping may be shared by every raise of a hot path.
        self.headers: Mapping[str, str] = headers

    def __str__(self) -> str:
        return self.message


class DomainValueError(DomainError, ValueError):
    """A DomainError that is also a ValueError: a parser's refusal (argparse's `type=` shows it)."""


def entry_for(code: str, status_code: int | None = None) -> ErrorCode:
    """The registered entry of `code` (the old string form); unknown codes raise when strict."""
    entry = REGISTRY.get(code)
    if entry is None:
        _refuse(f"error code {code!r} is not in codex/error_codes.py")
        return ErrorCode(code, status_code or 400, "", "", api=False)
    if status_code is not None and status_code != entry.status:
        _refuse(f"{code} answers {entry.status}, not {status_code}")
    return entry


def _refuse(problem: str) -> None:
    if strict():
        raise LookupError(problem)
    logger.error("error registry: %s", problem)


# --- request and HTTP ----------------------------------------------------------------------
BAD_REQUEST = _entry(
    "bad_request",
    400,
    "The request could not be understood.",
    "the HTTP request itself could not be understood (a bad `Host`, say)",
)
MALFORMED_JSON = _entry(
    "malformed_json",
    400,
    "Body is not valid JSON.",
    "the body is not strict JSON (NaN/Infinity, bad UTF-8, too deep, ...)",
)
INVALID_REQUEST = _entry(
    "invalid_request",
    400,
    "The request is not valid.",
    "wrong shape (a bare list, an empty or >500 batch, extra batch keys), or the single event "
    "is invalid (the message names the field)",
)
INVALID_EVENT = _entry(
    "invalid_event",
    400,
    "invalid",
    "a batch item's `error`: that event is invalid (the message names the field); the batch "
    "still answers 200",
)
INVALID_DELIVERY = _entry(
    "invalid_delivery",
    400,
    "The delivery is not valid.",
    "a webhook delivery, correctly signed, is not what its kind needs (docs/sources.md)",
)
METHOD_NOT_ALLOWED = _entry(
    "method_not_allowed",
    405,
    "Method not allowed.",
    "another method than the endpoint's (after authentication); `Allow` names it",
    headers=("Allow",),
)
NOT_ACCEPTABLE = _entry(
    "not_acceptable",
    406,
    "Could not satisfy the request Accept header.",
    "an `Accept` header no answer of the endpoint satisfies",
)
LENGTH_REQUIRED = _entry(
    "length_required",
    411,
    "Send the body with a Content-Length.",
    "a chunked body without `Content-Length`: send the length",
)
PAYLOAD_TOO_LARGE = _entry(
    "payload_too_large",
    413,
    "The body is too large.",
    "body over 1 MiB (1,048,576 bytes); answered from `Content-Length`, the body is drained (up "
    "to 8 MiB) or the connection closed after the answer",
)
UNSUPPORTED_MEDIA_TYPE = _entry(
    "unsupported_media_type",
    415,
    "Content-Type must be application/json.",
    "`Content-Type` is not `application/json` (a `charset` parameter is fine)",
    headers=("RateLimit-Policy", "RateLimit"),
)
NOT_FOUND = _entry(
    "not_found",
    404,
    "Not found.",
    "no endpoint at this path, or (`GET /v1/events/{key}`) your tenant has no event with this key",
)
CSRF_FAILED = _entry(
    "csrf_failed",
    403,
    "CSRF verification failed.",
    "a browser form post without a valid CSRF token",
)
FORBIDDEN = _entry(
    "forbidden",
    403,
    "Forbidden.",
    "not allowed (e.g. `/api/schema/` when deployed, for anyone but logged-in staff)",
)
INTERNAL_ERROR = _entry(
    "internal_error",
    500,
    "Internal error; quote the rid when reporting.",
    "a failure of ours, never your input; quote the `rid`",
)

# --- signatures (POST /v1/events, GET /config, GET /v1/events/{key}, source webhooks) -------
_SIGNED = ("WWW-Authenticate",)
MISSING_SIGNATURE = _entry(
    "missing_signature",
    401,
    "X-Codex-Key-Id, webhook-id, webhook-timestamp and webhook-signature are required.",
    "`X-Codex-Key-Id` or any `webhook-*` header absent (a webhook delivery: its platform's "
    "signature header)",
    headers=_SIGNED,
)
INVALID_SIGNATURE = _entry(
    "invalid_signature",
    401,
    "No signature matches.",
    "no listed signature matches this request (method, path, query, body), or a malformed "
    "signature/timestamp",
    headers=_SIGNED,
)
REPLAYED_REQUEST = _entry(
    "replayed_request",
    401,
    "This webhook-id was already used with this key: sign every request (every retry too) with "
    "a new webhook-id.",
    "the `webhook-id` was already used with this key (sign every attempt with a new one)",
    headers=_SIGNED,
)
SIGNATURE_VERSION_REFUSED = _entry(
    "signature_version_refused",
    401,
    "v1 signatures are accepted only on POST /v1/events, while the tenant allows them; sign the "
    "request with v2 (method, path, query and body; docs/api.md).",
    "a `v1` signature where only `v2` is accepted (the tenant's `signatureV1Allowed` is off, or "
    "not `POST /v1/events`)",
    headers=_SIGNED,
)
TIMESTAMP_OUT_OF_TOLERANCE = _entry(
    "timestamp_out_of_tolerance",
    401,
    "webhook-timestamp is more than 300 s away from the server clock.",
    "`webhook-timestamp` (a Stripe delivery's `t=`) more than 300 s from the server clock",
    headers=_SIGNED,
)
UNKNOWN_KEY = _entry("unknown_key", 401, "No such signing key.", "no such key id", headers=_SIGNED)
REVOKED_KEY = _entry(
    "revoked_key",
    401,
    "This signing key is revoked or expired.",
    "the key is revoked, its rotation overlap is over, or its device is revoked",
    headers=_SIGNED,
)
UNAUTHORIZED = _entry(
    "unauthorized",
    401,
    "A valid bearer token is required.",
    "`GET /metrics` without the right `Authorization: Bearer` token",
    headers=_SIGNED,
)
TENANT_SUSPENDED = _entry(
    "tenant_suspended",
    403,
    "This tenant is suspended.",
    "correctly signed (or a delivery to a source), but the tenant is suspended",
)

# --- the ledger ------------------------------------------------------------------------------
IDEMPOTENCY_KEY_REUSED = _entry(
    "idempotency_key_reused",
    422,
    "This idempotency_key was already used for different content.",
    "single event (or a batch item's `error`): the key exists for your tenant with different "
    "content",
    headers=("RateLimit-Policy", "RateLimit"),
)
UNKNOWN_SOURCE = _entry(
    "unknown_source", 404, "No such webhook source.", "a webhook delivery to no such source"
)
SOURCE_DISABLED = _entry(
    "source_disabled",
    410,
    "This webhook source is disabled.",
    "a webhook delivery to a disabled source (`source_disable`)",
)
RATE_LIMITED = _entry(
    "rate_limited",
    429,
    "Too many requests; retry after Retry-After.",
    "over your tenant's (`POST /v1/events`), your key's (reads) or the source's requests per "
    "second; wait `Retry-After` seconds",
    headers=("Retry-After", "RateLimit-Policy", "RateLimit"),
)
UNAVAILABLE = _entry(
    "unavailable",
    503,
    "The event store is unavailable; retry later.",
    "PostgreSQL (or a key store) cannot be reached; answered within 10 s, with `Retry-After`",
    headers=("Retry-After",),
    defaults={"Retry-After": "5"},
)
DEPENDENCY_UNAVAILABLE = _entry(
    "dependency_unavailable",
    503,
    "not ready",
    "`GET /readyz`: PostgreSQL or Redis is failing (the body's `checks` say which)",
)

# --- commands and the admin (operators) ------------------------------------------------------
SECRET_UNDECRYPTABLE = _entry(
    "secret_undecryptable",
    503,
    "no CODEX_SECRETS_KEY key decrypts this secret: some secret was encrypted with a key no "
    "longer in CODEX_SECRETS_KEY (the log line names its key id); put that key back and run again",
    "a stored secret that no key of `CODEX_SECRETS_KEY` decrypts (a key was dropped too early; "
    "the log line names the key id): put that key back. The API answers `unavailable`",
    headers=("Retry-After",),
    defaults={"Retry-After": "30"},
    api=False,
    answers_as=UNAVAILABLE,
    answer_message="The secret store is unavailable; retry later.",
)
INVALID_DURATION = _entry(
    "invalid_duration",
    400,
    "a duration looks like 30m, 24h, 7d, 0s or 1h30m",
    "a duration argument that is not like `30m`, `24h`, `7d`, `0s` or `1h30m`",
    api=False,
)
INVALID_MOMENT = _entry(
    "invalid_moment",
    400,
    "not an ISO 8601 time",
    "a time argument that is not an ISO 8601 date or date-time",
    api=False,
)
INVALID_FLAG = _entry(
    "invalid_flag",
    400,
    "That flag value is not allowed.",
    "an unknown flag, or a value outside its type and bounds (the message names the flag)",
    api=False,
)
TENANT_ERROR = _entry(
    "tenant_error",
    400,
    "That tenant change cannot be made.",
    "a tenant, device or key request that cannot be carried out (the message says why)",
    api=False,
)
TENANT_NOT_FOUND = _entry(
    "tenant_not_found", 404, "No such tenant.", "no tenant by that slug or id", api=False
)
DEVICE_NOT_FOUND = _entry(
    "device_not_found", 404, "No such device.", "the tenant has no device by that name", api=False
)
TENANT_OFFBOARDED = _entry(
    "tenant_offboarded",
    409,
    "The tenant is offboarded: offboarding is final.",
    "the tenant is (being) offboarded: nothing is given back to it, ever",
    api=False,
)
SOURCE_ERROR = _entry(
    "source_error",
    400,
    "That source change cannot be made.",
    "a webhook source request that cannot be carried out (weak secret, unknown source, ...)",
    api=False,
)
STRIPE_FAILED = _entry(
    "stripe_failed",
    502,
    "Stripe failed.",
    "Stripe refused or could not be reached (provisioning, source reconcile); nothing was "
    "changed, run again",
    api=False,
)
INVALID_SUBJECT = _entry(
    "invalid_subject",
    400,
    "subject id: 1 to 255 characters",
    "an erasure's subject id that is not 1 to 255 characters",
    api=False,
)
INVALID_ARGUMENTS = _entry(
    "invalid_arguments",
    400,
    "These arguments do not go together.",
    "a command's arguments that are missing, malformed or do not combine (the message says which)",
    api=False,
)
RECONCILE_ERROR = _entry(
    "reconcile_error",
    400,
    "The reconcile cannot run as asked.",
    "a reconcile that cannot run as asked",
    api=False,
)
RECONCILE_FAILED = _entry(
    "reconcile_failed",
    500,
    "Reconcile failed for some tenants.",
    "a reconcile pass in which some tenant's day failed (the others were reconciled)",
    api=False,
)
DAY_NOT_STARTED = _entry(
    "day_not_started",
    400,
    "That day has not started yet (UTC).",
    "reconcile of a day that has not started yet (UTC)",
    api=False,
)
INVALID_DAYS = _entry(
    "invalid_days",
    400,
    "days out of range",
    "an SLO report over too few or too many days",
    api=False,
)
PROMETHEUS_UNAVAILABLE = _entry(
    "prometheus_unavailable",
    503,
    "Prometheus cannot answer.",
    "the SLO report cannot read Prometheus (`PROMETHEUS_URL` unset, unreachable or refusing)",
    api=False,
)
SOURCE_RECONCILE_ERROR = _entry(
    "source_reconcile_error",
    400,
    "The source reconcile cannot run.",
    "a source reconcile that cannot run (tenant not active, no enabled stripe source with a key)",
    api=False,
)
REPLAY_FAILED = _entry(
    "replay_failed",
    500,
    "Some entries failed again; they stay open.",
    "a dead-letter replay in which some entries failed again (they stay open)",
    api=False,
)


def api_codes() -> list[str]:
    """Codes an HTTP answer can carry (the OpenAPI ErrorCode enum), in registry order."""
    return [e.code for e in REGISTRY.values() if e.api]


def markdown_table(*, api: bool) -> str:
    """docs/api.md's error table of the API's (api=True) or the operators' codes."""
    rows = sorted((e for e in REGISTRY.values() if e.api is api), key=lambda e: (e.status, e.code))
    lines = ["| Status | Code | When |", "|--------|------|------|"]
    for e in rows:
        carries = f" (carries {', '.join(f'`{h}`' for h in e.headers)})" if e.headers else ""
        lines.append(f"| {e.status} | `{e.code}` | {e.when}{carries} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m codex.error_codes: the tables for docs/api.md
    print(markdown_table(api=True), markdown_table(api=False), sep="\n\n")
