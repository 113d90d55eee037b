"""HTTP edges over a real socket under gunicorn: refused bodies never poison keep-alive."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.dbutil import database_url
from tests.procs import gunicorn_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(transactional_db):
    with gunicorn_server({"DATABASE_URL": database_url()}) as (url, _proc):
        yield urlsplit(url)


def _conn(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.hostname, server.port, timeout=10)


def test_an_early_413_leaves_the_keep_alive_connection_usable(server):
    conn = _conn(server)
    body = b"x" * (2 * 1024 * 1024)
    conn.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    conn.request("GET", "/healthz")  # the same connection
    again = conn.getresponse()
    assert again.status == 200
    assert json.loads(again.read())["status"] == "ok"
    conn.close()


def test_a_huge_declared_body_gets_413_and_the_connection_is_closed(server):
    sock = socket.create_connection((server.hostname, server.port), timeout=10)
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    sock.sendall(head + b"x" * 65536)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break  # closed by the server after the answer
        received += chunk
    sock.close()
    assert received.startswith(b"HTTP/1.1 413")
    assert b"payload_too_large" in received


def test_a_chunked_body_is_refused_with_411_and_the_connection_stays_usable(server):
    conn = _conn(server)
    conn.request(
        "POST",
        "/v1/events",
        iter([b'{"idempotency_key": "a",', b' "type": "x"}']),
        {"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 411
    assert json.loads(response.read())["error"]["code"] == "length_required"
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()
