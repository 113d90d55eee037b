"""codex.cache.thread_command: a connection kept per thread, dropped and replaced when stale."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.cache import cache
from redis.exceptions import ResponseError

from codex.cache import redis_client, thread_command
from tenants.replay import webhook_id_claim


def _client_id() -> int:
    return thread_command(cache, "k", "CLIENT", "ID")


def test_the_same_thread_reuses_one_connection_and_another_thread_gets_its_own():
    first = _client_id()
    assert _client_id() == first
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(_client_id()))
    thread.start()
    thread.join(10)
    assert len(other) == 1
    assert other[0] != first


def test_a_killed_connection_is_replaced_and_the_command_still_answers():
    killed = _client_id()
    redis_client(cache, "k").execute_command("CLIENT", "KILL", "ID", killed)
    assert _client_id() != killed  # the stale one was dropped, the command ran on a new one


def test_a_replay_claim_is_true_once_then_false_across_a_killed_connection():
    claim = {"key_id": "k-thread", "msg_id": "m-1", "timestamp": int(time.time()), "tolerance_s": 1}
    assert webhook_id_claim(**claim) is True
    redis_client(cache, "k").execute_command("CLIENT", "KILL", "ID", _client_id())
    assert webhook_id_claim(**claim) is False


def test_a_command_error_is_raised_and_the_connection_kept():
    held = _client_id()
    with pytest.raises(ResponseError):
        thread_command(cache, "k", "NO-SUCH-COMMAND")
    assert _client_id() == held
