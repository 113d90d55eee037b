"""The Celery app: broker from REDIS_URL, tasks autodiscovered, rid/tenantId carried in headers."""

from __future__ import annotations

import os

from celery import Celery, signals

from codex import context

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


@signals.worker_init.connect
def _fresh_metrics_dir(**_):
    """Empty this worker's Prometheus multiprocess directory at start (stale files double-count)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


@signals.worker_process_init.connect
def _fresh_db_connections(**_):
    """Forked pool children must not share the parent's database sockets."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()


@signals.worker_process_shutdown.connect
def _mark_metrics_dead(pid=None, **_):
    """Let /metrics drop live gauges of a pool child that exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
