"""gunicorn settings: workers from WEB_CONCURRENCY, graceful SIGTERM, multiprocess metrics."""

import shutil
from pathlib import Path

from codex import env
from codex.logconfig import logging_config

bind = env.text("BIND", "127.0.0.1:8000")
workers = max(1, env.integer("WEB_CONCURRENCY", 2))
worker_class = "gthread"
threads = env.integer("GUNICORN_THREADS", 4)
# SIGTERM: stop accepting, let in-flight requests finish within graceful_timeout, then exit.
graceful_timeout = env.integer("GUNICORN_GRACEFUL_TIMEOUT", 25)
timeout = 30
keepalive = 5
accesslog = None  # the app logs one JSON line per request itself
logger_class = "codex.gunicorn_logging.AppLogsAccess"
errorlog = "-"
# gunicorn's own lines (start, worker boot/exit, timeouts) as JSON on stdout, like the app's.
logconfig_dict = logging_config(level=env.text("LOG_LEVEL", "INFO"))
logconfig_dict["loggers"].update(
    {
        name: {"handlers": ["console"], "level": "INFO", "propagate": False}
        for name in ("gunicorn.error", "gunicorn.access")
    }
)
max_requests = env.integer("GUNICORN_MAX_REQUESTS", 100000)
max_requests_jitter = env.integer("GUNICORN_MAX_REQUESTS_JITTER", 10000)
forwarded_allow_ips = env.text("FORWARDED_ALLOW_IPS", "127.0.0.1")

_metrics_dir = env.text("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Empty the Prometheus multiprocess directory: stale files would double-count."""
    if _metrics_dir:
        path = Path(_metrics_dir)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """A dead worker: its live gauges leave /metrics, its counters fold into the archive files."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        from codex.metrics_files import archive_dead_process

        multiprocess.mark_process_dead(worker.pid)
        archive_dead_process(worker.pid, _metrics_dir)


def _serves_codex() -> bool:
    """True in a worker of the codex service (the bench's baseline apps share this file)."""
    from django.apps import apps

    return apps.ready and apps.is_installed("ingest")


def post_worker_init(worker):
    """Warm the key and flag caches before taking requests (ingest/cachewarm.py; never raises)."""
    if not _serves_codex():
        return
    from django.db import connection

    from ingest.cachewarm import caches_warm

    caches_warm()
    connection.close()  # the request threads have their own connections


def worker_exit(server, worker):
    """Publish pending drain wake-ups and key uses, close DB connections once requests finished."""
    if not _serves_codex():
        return
    from django.db import connections

    from ingest.wake import drain_wake_flush
    from tenants.auth import touches_flush

    drain_wake_flush()
    touches_flush()
    connections.close_all()
