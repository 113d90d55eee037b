"""Wake-ups of the enrichment drain: after commit, off the request thread, debounced per process.

A request that stored new events notes its tenant here and returns; a daemon thread publishes one
`ingest.tasks.drain` task naming every tenant noted since its last publish, at most once per
`settings.CODEX_DRAIN_WAKE_INTERVAL_S` (default 0.5 s). So a busy web process costs the broker
two publishes a second whatever its request rate (a publish costs the web process about 2 ms of
CPU: at 0.2 s it was 2.5% of a busy worker's), and the first event after a quiet spell is drained
at once. Nothing depends on a wake-up: a lost one (Redis down, the process killed)
only delays enrichment until the sweeper's next minute.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

from codex.celery import app
from ingest import metrics

logger = logging.getLogger(__name__)
DRAIN_TASK = "ingest.tasks.drain"  # by name: ingest.tasks imports the services that import this


class _Waker:
    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self._pid: int | None = None  # the process whose thread runs; a fork starts a new one

    def note(self, tenant_id: str) -> None:
        with self._cond:
            self._pending.add(tenant_id)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="drain-waker", daemon=True).start()
            self._cond.notify()

    def _take(self) -> set[str]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            taken, self._pending = self._pending, set()
            return taken

    def _run(self) -> None:
        interval = float(getattr(settings, "CODEX_DRAIN_WAKE_INTERVAL_S", 0.5))
        while True:
            publish(sorted(self._take()))
            time.sleep(interval)  # the debounce: what arrives meanwhile goes in the next publish

    def flush(self) -> None:
        """Publish what is pending now (a process about to exit)."""
        with self._cond:
            taken, self._pending = self._pending, set()
        if taken:
            publish(sorted(taken))


_waker = _Waker()


def drain_wake(tenant_id) -> None:
    """Note that `tenant_id` has new events; its drain is woken within the debounce interval."""
    _waker.note(str(tenant_id))


def drain_wake_flush() -> None:
    """Publish pending wake-ups at once (gunicorn's worker_exit calls it)."""
    _waker.flush()


def publish(tenant_ids: list[str], *, countdown: float | None = None) -> bool:
    """Enqueue one drain task for these tenants; on a broker failure log, count, return False."""
    try:
        app.send_task(
            DRAIN_TASK,
            args=(tenant_ids,),
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )
    # kombu and redis raise many exception types; whatever it is, the ledger has the events.
    except Exception as exc:
        metrics.ENQUEUE_ERRORS.inc()
        logger.warning(
            "enrichment wake-up failed; the sweeper will wake it",
            extra={"tenants": len(tenant_ids)},
            exc_info=exc,
        )
        return False
    return True
