"""The public Client: durable track(), background sync thread, flush(), status(), close()."""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .api import Api
from .errors import ServerError, TransportError
from .events import build_event, encode_event
from .lookup import EventFate
from .remote_config import DEFAULT_CONFIG, RemoteConfig
from .store import DeadLetter, Store
from .sync import MAX_BATCH_EVENTS, MAX_BODY_BYTES, Syncer, SyncResult

log = logging.getLogger(__name__)

# Used when the server sends no max-age (and as the retry delay after a failed fetch).
DEFAULT_CONFIG_TTL_SEC = 30.0
# Without an explicit override, never poll /config more often than this.
MIN_CONFIG_TTL_SEC = 1.0


def data_dir() -> Path:
    """Base directory for SDK files: $CODEX_SDK_HOME, else ~/.codex-sdk."""
    env = os.environ.get("CODEX_SDK_HOME")
    return Path(env) if env else Path.home() / ".codex-sdk"


def default_queue_path(key_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key_id)
    return data_dir() / f"queue-{safe}.sqlite3"


@dataclass(frozen=True)
class Status:
    """Snapshot returned by Client.status(); `as_dict()` gives a JSON-friendly form."""

    queue_depth: int
    in_flight: int  # queued rows currently leased by a sender (this or another process)
    dead_letters: int
    last_sync_at: str | None  # RFC 3339, persisted across processes
    last_sync_outcome: str | None
    last_sync_error: str | None
    config: RemoteConfig
    config_source: str  # "default" | "persisted" | "server" | "server-cached"
    config_fetched_at: str | None
    config_error: str | None
    running: bool
    next_sync_in: float | None  # seconds; None when paused, stopped or nothing is due
    events_accepted: int  # counters since this Client was created
    events_duplicate: int
    events_dead_lettered: int
    post_requests: int
    config_requests: int
    sync_passes: int

    @property
    def sync_enabled(self) -> bool:
        return self.config.sync_enabled

    @property
    def paused(self) -> bool:
        return not self.config.sync_enabled

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_wire()
        data["paused"] = self.paused
        return data


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _lease_owner() -> str:
    """Unique per Client instance: leases held by a crashed process simply expire."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Client:
    """Codex Ingest device client.

    Events are written to a local SQLite queue by track() and delivered by a background
    thread (start()) or explicitly by flush(). See the package README for behaviour under
    failures. Keyword-only tuning arguments:

    queue_path: SQLite file; default ~/.codex-sdk/queue-<key_id>.sqlite3 ($CODEX_SDK_HOME).
    timeout: per-HTTP-request timeout in seconds.
    config_refresh_sec: poll /config this often instead of the server's max-age (tests,
        operator drills).
    backoff_base / backoff_max: full-jitter backoff between retries of a failed batch.
    max_batch_events / max_batch_bytes: lower the 500-event / 1 MiB batch limits.
    lease_sec: how long claimed rows stay reserved for this sender (default max(60, 3*timeout)).
    on_sync: called with every SyncResult (background syncs and flushes), from the syncing
        thread; it must not call flush() itself.
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        queue_path: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
        config_refresh_sec: float | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BODY_BYTES,
        lease_sec: float | None = None,
        on_sync: Callable[[SyncResult], None] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if config_refresh_sec is not None and config_refresh_sec <= 0:
            raise ValueError("config_refresh_sec must be positive")
        self.key_id = key_id
        self._api = Api(base_url, key_id, secret)
        self.base_url = base_url
        self.queue_path = Path(queue_path) if queue_path else default_queue_path(key_id)
        self._store = Store(self.queue_path)
        self._timeout = timeout
        self._config_refresh_sec = config_refresh_sec
        self._backoff_base = backoff_base
        self._on_sync = on_sync
        self._syncer = Syncer(
            self._store,
            self._api,
            owner=_lease_owner(),
            timeout=timeout,
            lease_sec=lease_sec if lease_sec is not None else max(60.0, 3 * timeout),
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
        )

        self._state_lock = threading.Lock()
        self._config_lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one pass at a time within this process
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

        self._config, self._config_source, self._etag = self._persisted_config()
        self._config_expires = 0.0  # monotonic; 0 = fetch on first use
        self._config_fetched_at: float | None = None
        self._config_error: str | None = None
        self._config_requests = 0

        self._last_pass_end: float | None = None  # monotonic
        self._last_pass_failed = False
        self._totals = {"accepted": 0, "duplicate": 0, "dead": 0, "passes": 0}

    def _persisted_config(self) -> tuple[RemoteConfig, str, str | None]:
        """The config a previous run stored (config, "persisted", etag), else the defaults."""
        persisted = self._store.get_meta("config")
        if persisted:
            try:
                config = RemoteConfig.from_wire(persisted["config"])
                return config, "persisted", persisted.get("etag")
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable persisted config")
        return DEFAULT_CONFIG, "default", None

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:  # never include the secret
        return f"Client(base_url={self.base_url!r}, key_id={self.key_id!r})"

    # -- producing -----------------------------------------------------------------------

    def track(
        self,
        type: str,
        payload: dict[str, Any] | None = None,
        *,
        occurred_at: datetime | str | None = None,
        idempotency_key: str | None = None,
        source: str = "sdk",
        subject_id: str | None = None,
    ) -> str:
        """Durably queue one event and return its idempotency key.

        `subject_id` names who the event is about (a customer or person id, 1-255
        characters), so that subject's events can be erased on request. The event is
        committed to SQLite before this returns. Raises ValueError for invalid input;
        RuntimeError after close().
        """
        if self._closed:
            raise RuntimeError("client is closed")
        event = build_event(
            type,
            payload,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
            source=source,
            subject_id=subject_id,
        )
        key: str = event["idempotency_key"]
        if self._store.enqueue(key, encode_event(event)):
            log.debug("queued event %s (%s)", key, type)
        self._wake.set()  # lets an idle sync thread send it if an interval has passed
        return key

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background sync thread (idempotent)."""
        if self._closed:
            raise RuntimeError("client is closed")
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="codex-sdk-sync", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0, *, flush: bool = True) -> None:
        """Stop the sync thread and, if flush, try one last delivery within `timeout`.

        The final flush makes a single attempt per batch (no backoff) so close stays
        prompt; whatever is not delivered stays queued for the next run.
        """
        if self._closed:
            return
        deadline = time.monotonic() + max(0.0, timeout)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("sync thread still busy after %.1fs; abandoning it", timeout)
        if flush and self._store.has_claimable():
            self._flush(deadline, force=False, max_retries=0, stop=threading.Event())
        self._closed = True
        self._store.close()

    @property
    def running(self) -> bool:
        """True while the background sync thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- sending -------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0, *, force: bool = False) -> SyncResult:
        """Send queued events now, ignoring minIntervalSec, within `timeout` seconds.

        Honours syncEnabled (returns outcome "disabled" without sending) unless force=True.
        Failed batches are retried up to retryCap times with backoff inside the timeout.
        """
        if self._closed:
            raise RuntimeError("client is closed")
        return self._flush(
            time.monotonic() + timeout, force=force, max_retries=None, stop=self._stop
        )

    def _flush(
        self, deadline: float, *, force: bool, max_retries: int | None, stop: threading.Event
    ) -> SyncResult:
        if not self._sync_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            now = time.time()
            return SyncResult(
                "busy",
                error="another sync is in progress",
                started_at=now,
                finished_at=now,
                remaining=self._store.depth(),
            )
        try:
            self.refresh_config(timeout=deadline - time.monotonic())
            return self._pass(deadline=deadline, max_retries=max_retries, force=force, stop=stop)
        finally:
            self._sync_lock.release()

    def _pass(
        self, *, deadline: float, max_retries: int | None, force: bool, stop: threading.Event
    ) -> SyncResult:
        """Run one pass (caller holds _sync_lock) and record its outcome."""
        result = self._syncer.run(
            lambda: self._config, deadline=deadline, max_retries=max_retries, force=force, stop=stop
        )
        self._record(result)
        return result

    def _record(self, result: SyncResult) -> None:
        # Only passes that talked to the server count as syncs (and restart the interval).
        if result.requests:
            with self._state_lock:
                self._totals["accepted"] += result.accepted
                self._totals["duplicate"] += result.duplicates
                self._totals["dead"] += result.dead_lettered
                self._totals["passes"] += 1
                self._last_pass_end = time.monotonic()
                self._last_pass_failed = not result.ok
            self._store.set_meta(
                "last_sync",
                {
                    "at": _iso(result.finished_at),
                    "outcome": result.outcome,
                    "error": result.error,
                    "accepted": result.accepted,
                    "duplicates": result.duplicates,
                    "dead_lettered": result.dead_lettered,
                },
            )
        if result.outcome != "empty":
            level = logging.INFO if result.ok or result.outcome == "disabled" else logging.WARNING
            log.log(
                level,
                "sync %s: %d accepted, %d duplicates, %d dead-lettered, %d requests, "
                "%d still queued%s",
                result.outcome,
                result.accepted,
                result.duplicates,
                result.dead_lettered,
                result.requests,
                result.remaining,
                f" ({result.error})" if result.error else "",
            )
        if self._on_sync is not None:
            try:
                self._on_sync(result)
            except Exception:
                log.exception("on_sync callback raised")

    # -- config --------------------------------------------------------------------------

    @property
    def config(self) -> RemoteConfig:
        return self._config

    def refresh_config(self, *, force: bool = False, timeout: float | None = None) -> RemoteConfig:
        """Re-read /config if its cache expired (or force); on failure keep the last config.

        Uses If-None-Match with the stored ETag, so an unchanged config costs a 304.
        """
        limit = self._timeout if timeout is None else min(timeout, self._timeout)
        # Another thread may be mid-fetch against a hanging server: wait for it no longer than
        # our own budget (close() and flush() must keep their timeouts), then use what we have.
        if not self._config_lock.acquire(timeout=max(0.0, limit)):
            return self._config
        try:
            if not force and time.monotonic() < self._config_expires:
                return self._config
            self._fetch_config(limit)
            return self._config
        finally:
            self._config_lock.release()

    def _fetch_config(self, timeout: float) -> None:
        self._config_requests += 1
        ttl = self._config_refresh_sec
        try:
            answer = self._api.get_config(self._etag, timeout=max(timeout, 0.1))
        except (TransportError, ServerError) as exc:
            retry_after = exc.retry_after if isinstance(exc, ServerError) else None
            self._syncer.honour_retry_after(retry_after)
            if self._config_error != str(exc):  # log state changes, not every failed poll
                log.warning("config fetch failed, keeping %s config: %s", self._config_source, exc)
            self._config_error = str(exc)
            delay = max(ttl or DEFAULT_CONFIG_TTL_SEC, retry_after or 0.0)
            self._config_expires = time.monotonic() + delay
            return
        if self._config_error is not None:
            log.info("config fetch recovered")
        self._config_error = None
        self._config_fetched_at = time.time()
        if answer.config is None:
            self._config_source = "server-cached"  # 304: our copy is current
        else:
            self._apply_config(answer.config, answer.etag)
        if ttl is None:
            ttl = max(MIN_CONFIG_TTL_SEC, answer.max_age or DEFAULT_CONFIG_TTL_SEC)
        self._config_expires = time.monotonic() + ttl

    def _apply_config(self, new: RemoteConfig, etag: str | None) -> None:
        old = self._config
        self._config, self._etag, self._config_source = new, etag, "server"
        self._store.set_meta("config", {"config": new.to_wire(), "etag": etag})
        if new == old:
            return
        if old.sync_enabled and not new.sync_enabled:
            log.info("sync paused by server config (syncEnabled=false)")
        elif not old.sync_enabled and new.sync_enabled:
            log.info("sync resumed by server config (syncEnabled=true)")
        changes = [
            f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}"
            for name in ("sync_enabled", "min_interval_sec", "retry_cap")
            if getattr(old, name) != getattr(new, name)
        ]
        log.info("config changed: %s", ", ".join(changes))
        self._wake.set()

    # -- background loop -----------------------------------------------------------------

    def _next_due(self) -> float:
        """Monotonic time of the next background sync (ignoring whether anything is queued)."""
        with self._state_lock:
            if self._last_pass_end is None:
                due = 0.0
            else:
                gap = self._config.min_interval_sec
                if self._last_pass_failed:
                    gap = max(gap, self._backoff_base)  # no hot loop when interval is 0
                due = self._last_pass_end + gap
        return max(due, self._syncer.not_before)

    def _run(self) -> None:
        log.info("sync thread started (queue %s)", self.queue_path)
        if not self._config.sync_enabled:
            log.info("sync paused by %s config (syncEnabled=false)", self._config_source)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self._tick()
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("unexpected error in sync thread; retrying later")
                wait = max(self._backoff_base, 1.0)
            self._wake.wait(wait)
        log.info("sync thread stopped")

    def _tick(self) -> float:
        """Do whatever is due now; return how long the thread may sleep."""
        self.refresh_config()
        now = time.monotonic()
        until_config = max(0.0, self._config_expires - now)
        if not self._config.sync_enabled:
            return until_config  # paused: only config polls continue
        due = self._next_due()
        if now < due:
            return min(until_config, due - now)
        if not self._store.has_claimable():
            return until_config  # track() wakes us when something arrives
        with self._sync_lock:
            self._pass(deadline=math.inf, max_retries=None, force=False, stop=self._stop)
        return 0.0

    # -- introspection -------------------------------------------------------------------

    def status(self) -> Status:
        """Snapshot of queue, last sync, effective config and counters (see Status)."""
        if self._closed:
            raise RuntimeError("client is closed")
        last = self._store.get_meta("last_sync") or {}
        running = self.running
        next_in: float | None = None
        if running and self._config.sync_enabled and self._store.has_claimable():
            next_in = max(0.0, self._next_due() - time.monotonic())
        with self._state_lock:
            totals = dict(self._totals)
        return Status(
            queue_depth=self._store.depth(),
            in_flight=self._store.in_flight(),
            dead_letters=self._store.dead_letter_count(),
            last_sync_at=last.get("at"),
            last_sync_outcome=last.get("outcome"),
            last_sync_error=last.get("error"),
            config=self._config,
            config_source=self._config_source,
            config_fetched_at=_iso(self._config_fetched_at) if self._config_fetched_at else None,
            config_error=self._config_error,
            running=running,
            next_sync_in=next_in,
            events_accepted=totals["accepted"],
            events_duplicate=totals["duplicate"],
            events_dead_lettered=totals["dead"],
            post_requests=self._syncer.requests_total,
            config_requests=self._config_requests,
            sync_passes=totals["passes"],
        )

    def lookup(self, idempotency_key: str, *, timeout: float | None = None) -> EventFate | None:
        """Ask the server what happened to one event: None when the tenant has no such key.

        Raises ServerError / TransportError like any request (a 401 for a revoked key, say).
        """
        if not isinstance(idempotency_key, str) or not idempotency_key:
            raise ValueError("idempotency_key must be a non-empty string")
        limit = self._timeout if timeout is None else min(timeout, self._timeout)
        return self._api.lookup_event(idempotency_key, timeout=limit)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Most recent dead-lettered events (conflict/rejected), newest first."""
        return self._store.dead_letters(limit)

    def dead_letter(self, idempotency_key: str) -> DeadLetter | None:
        """The dead letter for this key, if the server refused it."""
        return self._store.dead_letter(idempotency_key)

    def requeue_dead_letters(self, keys: list[str] | None = None) -> int:
        """Move dead letters (all, or the given keys) back into the queue; returns the count.

        For operators, e.g. after a server-side fix. Content is unchanged, so a "conflict"
        will conflict again.
        """
        return self._store.requeue_dead_letters(keys)
