"""GET /metrics: every process's metrics (gunicorn workers and Celery workers) summed."""

from __future__ import annotations

import contextlib
import glob
import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from codex import env
from codex import error_codes as codes
from codex.errors import domain_error_response
from codex.metrics_files import directory_lock


class _MergedDirsCollector:
    """Merge the multiprocess files of several directories (web and worker) into one view."""

    def __init__(self, dirs: list[str]):
        self.dirs = dirs

    def collect(self):
        with contextlib.ExitStack() as stack:
            files: list[str] = []
            for d in self.dirs:
                # Shared: a dead process's files are not folded into the archive mid-read.
                stack.enter_context(directory_lock(d, exclusive=False))
                files.extend(glob.glob(os.path.join(d, "*.db")))
            return MultiProcessCollector.merge(files, accumulate=True)


def metric_dirs() -> list[str]:
    """The multiprocess directories to read: this process's plus CODEX_METRICS_DIRS."""
    dirs = [env.text("PROMETHEUS_MULTIPROC_DIR", "")]
    dirs += env.text("CODEX_METRICS_DIRS", "").split(os.pathsep)
    seen: list[str] = []
    for d in dirs:
        if d and os.path.isdir(d) and d not in seen:
            seen.append(d)
    return seen


def render() -> bytes:
    """The exposition text for the current process layout."""
    dirs = metric_dirs()
    if not dirs:
        return generate_latest(REGISTRY)  # single process (tests, runserver)
    registry = CollectorRegistry()
    registry.register(_MergedDirsCollector(dirs))
    return generate_latest(registry)


def _authorized(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True  # development and tests; deployed environments refuse to start without one
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def metrics(request):
    """Prometheus scrape endpoint (bearer token when METRICS_TOKEN is set)."""
    if not _authorized(request):
        return domain_error_response(
            codes.UNAUTHORIZED.error(
                "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.",
                www_authenticate='Bearer realm="metrics"',
            )
        )
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
