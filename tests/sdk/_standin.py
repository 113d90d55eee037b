"""Stand-in Codex Ingest server for SDK tests: verifies v2 signatures, dedups, injects faults."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.signing import verify_v2

MAX_BODY = 1024 * 1024
TYPE_RE = re.compile(r"[a-z0-9_.:-]{1,100}")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Fault:
    """A canned request-level error for the next matching request."""

    status: int
    code: str
    retry_after: int | None = None


@dataclass
class Record:
    t: float  # time.monotonic() when the request arrived
    method: str
    path: str
    status: int = 0
    events: list[str] = field(default_factory=list)  # idempotency keys in the body
    size: int = 0
    user_agent: str = ""
    webhook_id: str = ""
    if_none_match: str | None = None


class StandIn:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = dict(keys)  # key_id -> whsec_ secret
        self.config: dict[str, Any] = {"syncEnabled": True, "minIntervalSec": 0, "retryCap": 3}
        self.max_age = 30
        self.cond = threading.Condition()
        self.stored: dict[str, str] = {}  # idempotency_key -> canonical event JSON
        self.delivered: list[str] = []  # keys in order of first acceptance
        self.requests: list[Record] = []
        self.post_faults: deque[Fault] = deque()
        self.config_faults: deque[Fault] = deque()
        self.reject_types: dict[str, tuple[str, str]] = {}  # type -> (code, message)
        self.drop_responses = 0  # next N POSTs: commit, then hang up without answering
        self.hold: threading.Event | None = None  # if set, POSTs block until it is set
        self.clock_skew = 0.0  # pretend the server clock is this far ahead
        self.seen_ids: set[str] = set()
        self.posts_arrived = 0  # authenticated POSTs, counted before any hold/answer
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]  # keep the port across restarts
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    # -- fault injection -------------------------------------------------------------

    def fail_posts(
        self, status: int, code: str, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` POST /v1/events with this request-level error."""
        self.post_faults.extend(Fault(status, code, retry_after) for _ in range(times))

    def fail_config(
        self, status: int, code: str, *, retry_after: int | None = None, times: int = 1
    ) -> None:
        self.config_faults.extend(Fault(status, code, retry_after) for _ in range(times))

    # -- observation -------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until predicate() holds (re-checked on every request); False on timeout."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def posts(self) -> list[Record]:
        with self.cond:
            return [r for r in self.requests if r.method == "POST"]

    def config_gets(self) -> list[Record]:
        with self.cond:
            return [r for r in self.requests if r.path == "/config"]

    def _record(self, rec: Record) -> None:
        with self.cond:
            self.requests.append(rec)
            self.cond.notify_all()

    # -- request handling (called from handler threads) --------------------------------

    def authenticate(self, h: _Handler, body: bytes, rec: Record) -> tuple[int, str] | None:
        """Return (status, code) on failure, None when the signature is valid."""
        key_id = h.headers.get("X-Codex-Key-Id")
        if not key_id:
            return 401, "missing_signature"
        secret = self.keys.get(key_id)
        if secret is None:
            return 401, "unknown_key"
        headers = {k: v for k, v in h.headers.items()}
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - (time.time() + self.clock_skew)) > 300:
            return 401, "timestamp_out_of_tolerance"  # against the stand-in's (skewed) clock
        if not verify_v2(secret, h.command, h.path, headers, body):
            return 401, "invalid_signature"
        with self.cond:
            if msg_id in self.seen_ids:  # a webhook-id is accepted once, like the server
                return 401, "replayed_request"
            self.seen_ids.add(msg_id)
        return None

    def config_etag(self) -> str:
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()
        return f'"{digest[:16]}"'

    def handle_events(self, payload: Any) -> dict[str, Any]:
        results = []
        counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        with self.cond:
            for ev in payload["events"]:
                key = ev.get("idempotency_key") if isinstance(ev, dict) else None
                error = None
                if not isinstance(key, str) or not key:
                    status, error = "rejected", {"code": "invalid_event", "message": "no key"}
                elif not TYPE_RE.fullmatch(str(ev.get("type", ""))):
                    status, error = "rejected", {"code": "invalid_event", "message": "bad type"}
                elif ev["type"] in self.reject_types:
                    code, message = self.reject_types[ev["type"]]
                    status, error = "rejected", {"code": code, "message": message}
                else:
                    canonical = json.dumps({"source": "sdk", **ev}, sort_keys=True)
                    previous = self.stored.get(key)
                    if previous is None:
                        self.stored[key] = canonical
                        self.delivered.append(key)
                        status = "accepted"
                    elif previous == canonical:
                        status = "duplicate"
                    else:
                        status = "conflict"
                        error = {"code": "idempotency_conflict", "message": "key reused"}
                counts[status] += 1
                results.append({"idempotency_key": key, "status": status, "error": error})
            self.cond.notify_all()
        return {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "conflicts": counts["conflict"],
            "rejected": counts["rejected"],
            "results": results,
        }


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    server_version = "standin/1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _reply(
        self,
        rec: Record,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        rec.status = status
        self.standin._record(rec)  # before writing: the peer may be gone (killed client)
        self.wfile.write(data)

    def _error(self, rec: Record, status: int, code: str, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if code == "timestamp_out_of_tolerance":
            headers["Date"] = formatdate(time.time() + self.standin.clock_skew, usegmt=True)
        err = {"code": code, "message": code.replace("_", " "), "rid": "rid-test"}
        self._reply(rec, status, {"error": err}, headers)

    def _start(self) -> tuple[Record, bytes]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Record(
            t=time.monotonic(),
            method=self.command,
            path=self.path,
            size=len(body),
            user_agent=self.headers.get("User-Agent", ""),
            webhook_id=self.headers.get("webhook-id", ""),
            if_none_match=self.headers.get("If-None-Match"),
        )
        return rec, body

    def do_GET(self) -> None:
        s = self.standin
        rec, body = self._start()
        if self.path != "/config":
            return self._error(rec, 404, "not_found")
        failure = s.authenticate(self, body, rec)
        if failure:
            return self._error(rec, *failure)
        if s.config_faults:
            fault = s.config_faults.popleft()
            return self._error(rec, fault.status, fault.code, fault.retry_after)
        etag = s.config_etag()
        headers = {"ETag": etag, "Cache-Control": f"private, max-age={s.max_age}"}
        if rec.if_none_match == etag:
            return self._reply(rec, 304, None, headers)
        return self._reply(rec, 200, dict(s.config), headers)

    def do_POST(self) -> None:
        s = self.standin
        rec, body = self._start()
        if self.path != "/v1/events":
            return self._error(rec, 404, "not_found")
        failure = s.authenticate(self, body, rec)
        if failure:
            return self._error(rec, *failure)
        if self.headers.get("Content-Type") != "application/json":
            return self._error(rec, 415, "unsupported_media_type")
        if len(body) > MAX_BODY:
            return self._error(rec, 413, "payload_too_large")
        try:
            payload = json.loads(body)
            events = payload["events"]
        except (ValueError, KeyError, TypeError):
            return self._error(rec, 400, "malformed_json")
        if not isinstance(events, list) or not 1 <= len(events) <= 500:
            return self._error(rec, 400, "invalid_request")
        rec.events = [e.get("idempotency_key") for e in events if isinstance(e, dict)]
        with s.cond:
            s.posts_arrived += 1
            s.cond.notify_all()
        if s.post_faults:
            fault = s.post_faults.popleft()
            return self._error(rec, fault.status, fault.code, fault.retry_after)
        if s.hold is not None:
            s.hold.wait(10)
        answer = s.handle_events(payload)
        if s.drop_responses > 0:
            s.drop_responses -= 1
            rec.status = -1  # committed, but the client never hears back
            s._record(rec)
            self.close_connection = True
            return None
        return self._reply(rec, 200, answer)
