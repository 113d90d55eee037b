"""Fixtures for the ingest tests: a signed POST, a live server with a wide backlog."""

from __future__ import annotations

import pytest

from tests.helpers import encode
from tests.signing import django_headers


@pytest.fixture
def post_signed(client, signed):
    """POST /v1/events signed with the `signed` tenant's key through the Django test client."""
    sign = signed.sign

    def post(doc, *, content_type="application/json", headers=None, sign_with=None):
        body = encode(doc)
        signed_headers = (sign_with or sign)(body)
        signed_headers.update(headers or {})
        return client.generic(
            "POST", "/v1/events", body, content_type=content_type, **django_headers(signed_headers)
        )

    return post


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
