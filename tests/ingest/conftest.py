"""Fixtures for the ingest tests: event factories and a signed POST helper."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.signing import django_headers

_seq = itertools.count(1)


def make_event(key: str | None = None, **fields) -> dict:
    """A valid event document; fields override."""
    doc = {
        "idempotency_key": key or f"k-{next(_seq)}",
        "type": "sale.completed",
        "occurred_at": "2026-01-15T10:30:00Z",
        "source": "pos",
        "payload": {"amount": "12.34", "currency": "EUR", "store": "S1"},
    }
    doc.update(fields)
    return doc


def encode(doc) -> bytes:
    return doc if isinstance(doc, bytes) else json.dumps(doc).encode()


@pytest.fixture
def post_signed(client, signed):
    """POST /v1/events signed with the `signed` tenant's key through the Django test client."""
    _tenant, _key, sign = signed

    def post(doc, *, content_type="application/json", headers=None, sign_with=None):
        body = encode(doc)
        signed_headers = (sign_with or sign)(body)
        signed_headers.update(headers or {})
        return client.generic(
            "POST", "/v1/events", body, content_type=content_type, **django_headers(signed_headers)
        )

    return post


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll an observable condition until it holds or the deadline passes (no blind sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wide_live_server(transactional_db):
    """Django's threaded live server with a listen backlog for 50+ simultaneous connections.

    (pytest-django's live_server keeps Django's backlog of 10: a burst of 50 connects overflows
    it and the kernel resets connections, which is a property of the test server, not of ours.)
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer
    from django.test.testcases import LiveServerThread

    class Server(ThreadedWSGIServer):
        request_queue_size = 256

    class Thread(LiveServerThread):
        server_class = Server

    thread = Thread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error

    class Live:
        url = f"http://127.0.0.1:{thread.port}"

    yield Live()
    thread.terminate()
