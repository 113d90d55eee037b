"""A server that accepts connections and never answers: close() and flush() keep their timeouts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from codex_sdk import Client
from tests.helpers import sdk_client


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """Accepts connections and reads nothing back: every request hangs until its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    listener.close()
    for conn in held:
        conn.close()


@pytest.fixture
def hung_client(hanging_url: str, key_id: str, secret: str, tmp_path: Path) -> Iterator[Client]:
    """A started client whose sync thread is stuck in its first GET /config (timeout 10 s)."""
    key = SimpleNamespace(key_id=key_id, secret=secret)
    client = sdk_client(hanging_url, key, queue_path=tmp_path / "q.sqlite3", timeout=10.0)
    client.track("store.sale", {"n": 1})
    client.start()
    time.sleep(0.5)  # the thread is now inside the hanging config read
    yield client
    client.close(timeout=0.5, flush=False)


def test_close_keeps_its_timeout_while_the_sync_thread_hangs_on_a_config_read(
    hung_client: Client,
) -> None:
    started = time.monotonic()
    hung_client.close(timeout=1.0)
    assert time.monotonic() - started < 2.5


def test_flush_keeps_its_timeout_while_the_sync_thread_hangs_on_a_config_read(
    hung_client: Client,
) -> None:
    started = time.monotonic()
    result = hung_client.flush(timeout=1.0)
    assert time.monotonic() - started < 2.5, result
    assert result.outcome == "timeout"
    assert hung_client.status().queue_depth == 1
