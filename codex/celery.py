"""The Celery app: broker from REDIS_URL, tasks autodiscovered, rid/tenantId carried in headers."""

from __future__ import annotations

import os

from celery import Celery, beat, signals
from django.core.exceptions import ImproperlyConfigured

from codex import context, env

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

app = Celery("codex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

RID_HEADER = "codex_rid"
TENANT_HEADER = "codex_tenant"


@signals.before_task_publish.connect
def _carry_context(headers=None, **_):
    """Stamp the publishing request's rid and tenant into the task message."""
    if headers is not None:
        headers.setdefault(RID_HEADER, context.request_id.get())
        headers.setdefault(TENANT_HEADER, context.tenant_id.get())


@signals.task_prerun.connect
def _restore_context(task=None, **_):
    """Log the task's lines with the rid and tenant of the request that enqueued it."""
    req = task.request
    headers = getattr(req, "headers", None) or {}
    rid = getattr(req, RID_HEADER, None) or headers.get(RID_HEADER) or context.new_request_id()
    context.request_id.set(rid)
    context.tenant_id.set(getattr(req, TENANT_HEADER, None) or headers.get(TENANT_HEADER))


@signals.task_postrun.connect
def _clear_context(**_):
    context.request_id.set(None)
    context.tenant_id.set(None)


def _metrics_dir_ready() -> None:
    """Create the multiprocess directory before any metric module is imported (they open files)."""
    path = env.text("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)


_metrics_dir_ready()


def schedule_dir_ensure(schedule_filename: str) -> None:
    """Create the directory of beat's schedule file, or refuse naming the setting it comes from."""
    directory = os.path.dirname(os.path.abspath(schedule_filename))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"celery beat cannot create {directory}, the directory of its schedule file "
            f"{schedule_filename} (settings.CELERY_BEAT_SCHEDULE_FILENAME, under CODEX_DATA_DIR; "
            f"or beat's -s/--schedule): {exc}"
        ) from exc


class DataDirScheduler(beat.PersistentScheduler):
    """Beat's shelve scheduler, creating its schedule file's directory before opening the file.

    settings.CELERY_BEAT_SCHEDULER names it. The schedule file lives under CODEX_DATA_DIR, which a
    fresh checkout or image does not have, and beat opens it as it builds the scheduler, before
    it sends beat_init: `celery beat` crashed there, and `celery worker -B` ran on without beat.
    """

    def setup_schedule(self) -> None:
        schedule_dir_ensure(self.schedule_filename)
        super().setup_schedule()


@signals.worker_init.connect
def _prune_stale_metric_files(**_):
    """Drop metric files of processes that no longer run (a previous worker's).

    Left in place they would be summed forever; this process's own files stay, so a solo-pool
    worker keeps counting.
    """
    path = env.text("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    for name in os.listdir(path):
        stem, _, pid_text = name.removesuffix(".db").rpartition("_")
        if not stem or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            os.unlink(os.path.join(path, name))
        except PermissionError:
            continue  # alive, someone else's


@signals.worker_ready.connect
def _serve_worker_metrics(**_):
    """Serve this worker's metrics over HTTP where web and worker share no disk.

    Locally (make run) the web's /metrics reads the worker's multiprocess directory too; on
    separate hosts or containers set CODEX_WORKER_METRICS_PORT and scrape the worker directly.
    """
    port = env.text("CODEX_WORKER_METRICS_PORT")
    path = env.text("PROMETHEUS_MULTIPROC_DIR")
    if not (port and path):
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    addr = env.text("CODEX_WORKER_METRICS_ADDR", "127.0.0.1")
    start_http_server(int(port), addr=addr, registry=registry)


@signals.worker_process_init.connect
def _fresh_db_connections(**_):
    """Forked pool children must not share the parent's database sockets."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()


@signals.worker_process_shutdown.connect
def _mark_metrics_dead(pid=None, **_):
    """Let /metrics drop live gauges of a pool child that exited."""
    if env.text("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from codex.metrics_files import archive_dead_process

        multiprocess.mark_process_dead(pid or os.getpid())
        archive_dead_process(pid or os.getpid())
