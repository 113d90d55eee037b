"""The lean API handler (codex.wsgi.ApiHandler): each exact API path is resolved once."""

from __future__ import annotations

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from tests.helpers import encode, logging_records_kept, make_event

with logging_records_kept():  # importing codex.wsgi makes log records lean process-wide
    from codex.wsgi import ApiHandler


@pytest.fixture(autouse=True)
def _connection_kept():
    """What Django's test client does: the test's transaction outlives each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _call(handler, method: str, path: str, body: bytes = b"", headers=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    chunks = handler(environ, start_response)
    try:
        answer["body"] = json.loads(b"".join(chunks) or b"null")
    finally:
        chunks.close()
    return answer


def test_an_exact_path_is_resolved_once_and_still_answers_every_request(signed):
    handler = ApiHandler()
    statuses = []
    for key in ("a", "b", "a"):
        body = encode(make_event(key))
        statuses.append(_call(handler, "POST", "/v1/events", body, signed.sign(body))["status"])
    assert statuses == [202, 202, 200]
    assert list(handler._matches) == ["/v1/events"]
    assert handler._matches["/v1/events"].url_name == "events"


def test_paths_with_arguments_and_unknown_paths_are_resolved_every_time(signed):
    handler = ApiHandler()
    for key in ("one", "two"):
        path = f"/v1/events/{key}"
        answer = _call(handler, "GET", path, headers=signed.sign(b"", method="GET", path=path))
        assert answer["status"] == 404  # looked up under its own key, which was never sent
        assert answer["body"]["error"]["code"] == "not_found"
    assert _call(handler, "POST", "/v1/nothing-here")["status"] == 404
    assert handler._matches == {}
