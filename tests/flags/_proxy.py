"""A TCP proxy in front of the live server that the SDK tests can take down, bring back, and
make lose responses; it logs each request line with the answer's status and Retry-After."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Exchange:
    """One proxied request: when it arrived, its request line, the answer (None if lost)."""

    at: float  # time.monotonic()
    request_line: str
    status: int | None
    retry_after: str | None
    dropped: bool


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


class FlakyProxy:
    """Forward one request per connection (the SDK sends Connection: close) to host:port."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: list[Exchange] = []
        self.drop_next_responses = 0  # forward the request, then close without answering
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        """Start listening (again) on the same port."""
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused, like a server that is down."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(2)

    def exchanges(self, prefix: str = "") -> list[Exchange]:
        with self._lock:
            return [e for e in self.log if e.request_line.startswith(prefix)]

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            request = _read_request(conn)
            if not request:
                return
            at = time.monotonic()
            request_line = request.split(b"\r\n", 1)[0].decode("latin-1")
            with socket.create_connection(self.target, timeout=10) as upstream:
                upstream.sendall(request)
                response = _read_all(upstream)
            head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            status = int(head[0].split(" ")[1]) if head and " " in head[0] else None
            retry_after = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in head[1:]
                    if line.lower().startswith("retry-after:")
                ),
                None,
            )
            with self._lock:
                drop = self.drop_next_responses > 0 and request_line.startswith("POST")
                if drop:
                    self.drop_next_responses -= 1
                self.log.append(Exchange(at, request_line, status, retry_after, drop))
            if not drop:
                conn.sendall(response)
