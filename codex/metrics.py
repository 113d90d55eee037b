"""HTTP response metrics of the API, for the error-ratio alert (multiprocess-safe counter).

`codex_http_responses_total{status_class}` counts every answered API request by status class
(2xx, 3xx, 4xx, 5xx; 1xx and anything odd fold into the nearest class). It is incremented by the
outermost middleware (codex.middleware.RequestContextMiddleware), so it sees the final response,
including the 500 Django's handler builds when a view raises. Operational paths are not API
traffic and are left out: /metrics, /healthz, /readyz, /admin/ and /static/.

The four children are created at import, so each class is exported (at 0) before its first
response and ratios such as 5xx / all evaluate to 0 instead of to nothing.

`codex_build_info{version,commit}` is 1 for the running release (codex/build.py, the same values
/healthz reports); every process sets it at start (CodexConfig.ready), web and worker alike.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from codex.build import BUILD

EXCLUDED_PREFIXES = ("/metrics", "/healthz", "/readyz", "/admin/", "/static/")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")

HTTP_RESPONSES = Counter(
    "codex_http_responses_total",
    "API responses by status class (2xx, 3xx, 4xx, 5xx); excludes /metrics, /healthz, /readyz, "
    "/admin/ and /static/.",
    ["status_class"],
)
BUILD_INFO = Gauge(
    "codex_build_info",
    "The running release: always 1, labelled with the version and the commit (codex/build.py).",
    ["version", "commit"],
    # One series per release, not one per process; a dead process's file is removed with it.
    multiprocess_mode="livemax",
)
BUILD_INFO.labels(version=BUILD.version, commit=BUILD.commit).set(1)
# Signed reads over their per-key limit (codex.throttle: GET /config, GET /v1/events/<key>).
READ_RATELIMIT_REJECTIONS = Counter(
    "codex_ratelimit_read_rejections_total",
    "Signed reads answered 429 because their signing key was over its per-second limit, by "
    "endpoint (config, lookup) and tenant.",
    ["endpoint", "tenant"],
)
READ_RATELIMIT_ERRORS = Counter(
    "codex_ratelimit_read_errors_total",
    "Read rate-limit checks that failed (Redis unreachable) and let the read through, by endpoint.",
    ["endpoint"],
)
_BY_CLASS = {cls: HTTP_RESPONSES.labels(status_class=cls) for cls in STATUS_CLASSES}
_CLASS_OF = {hundreds: STATUS_CLASSES[min(max(hundreds, 2), 5) - 2] for hundreds in range(10)}


def status_class(status_code: int) -> str:
    """The status_class label of an HTTP status code ("2xx" ... "5xx")."""
    return _CLASS_OF.get(status_code // 100, "5xx")


def record_response(path: str, status_code: int) -> None:
    """Count one answered request unless `path` is operational (cheap: a prefix test, an inc)."""
    if not path.startswith(EXCLUDED_PREFIXES):
        _BY_CLASS[status_class(status_code)].inc()
