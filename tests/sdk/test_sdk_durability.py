"""The local queue survives abandoned clients and SIGKILL, and processes never double-send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter

from codex_sdk.store import Store
from tests.helpers import wait_until

TRACK_FOREVER = textwrap.dedent(
    """
    import os, sys
    from codex_sdk import Client
    client = Client(sys.argv[1], sys.argv[2], os.environ["CODEX_TEST_SECRET"],
                    queue_path=sys.argv[3])
    i = 0
    while True:
        key = client.track("tick", {"i": i})
        print(key, flush=True)  # printed only after track() returned, i.e. committed
        i += 1
    """
)

SEND_AND_HANG = textwrap.dedent(
    """
    import os, sys, time
    from codex_sdk import Client
    client = Client(sys.argv[1], sys.argv[2], os.environ["CODEX_TEST_SECRET"],
                    queue_path=sys.argv[3], lease_sec=float(sys.argv[4]))
    print("started", flush=True)
    client.flush(timeout=60)  # blocks: the stand-in holds the POST until we are killed
    """
)

FLUSH_SMALL_BATCHES = textwrap.dedent(
    """
    import json, os, sys
    from codex_sdk import Client
    client = Client(sys.argv[1], sys.argv[2], os.environ["CODEX_TEST_SECRET"],
                    queue_path=sys.argv[3], max_batch_events=7)
    sys.stdin.readline()  # start line: both children begin together
    result = client.flush(timeout=30)
    print(json.dumps({"outcome": result.outcome, "delivered": result.delivered}), flush=True)
    client.close(flush=False)
    """
)


def _spawn(script: str, args: list[str], env: dict[str, str], secret: str, **kw):
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={**env, "CODEX_TEST_SECRET": secret},
        stdout=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_abandoned_client_queue_is_sent_by_the_next_one(standin, make_client) -> None:
    first = make_client()
    keys = [first.track("t", {"i": i}) for i in range(3)]
    # `first` is never closed or flushed, like a process that simply went away.
    second = make_client()
    assert second.status().queue_depth == 3
    assert second.flush(timeout=10).outcome == "ok"
    assert standin.delivered == keys


def test_sigkill_after_tracking_loses_and_duplicates_nothing(
    standin, make_client, queue_path, key_id, secret, subprocess_env
) -> None:
    child = _spawn(TRACK_FOREVER, [standin.url, key_id, str(queue_path)], subprocess_env, secret)
    assert child.stdout is not None
    printed = [child.stdout.readline().strip() for _ in range(100)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    rest = child.stdout.read()
    # Keep only complete lines: the last one may have been cut by the kill.
    printed += [line for line in rest.split("\n")[:-1] if line]
    assert child.returncode == -signal.SIGKILL

    client = make_client()
    depth = client.status().queue_depth
    # Everything reported as tracked is queued; at most one more was committed unprinted.
    assert len(printed) <= depth <= len(printed) + 1
    result = client.flush(timeout=30)
    assert result.outcome == "ok"
    assert set(printed) <= set(standin.delivered)
    assert len(standin.delivered) == depth
    assert Counter(k for r in standin.posts() for k in r.events).most_common(1)[0][1] == 1


def test_sigkill_mid_send_is_resent_once_after_the_lease_expires(
    standin, make_client, queue_path, key_id, secret, subprocess_env
) -> None:
    client = make_client()
    keys = [client.track("t", {"i": i}) for i in range(5)]
    standin.hold = threading.Event()
    child = _spawn(
        SEND_AND_HANG, [standin.url, key_id, str(queue_path), "1.0"], subprocess_env, secret
    )
    # Kill only once the child's POST is at the server (held there) and its rows are leased.
    assert standin.wait_for(lambda: standin.posts_arrived == 1)
    assert client.status().in_flight == 5
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)

    # While the dead child's lease is live, nobody else may send those rows.
    assert client.flush(timeout=5).outcome == "empty"
    standin.hold.set()  # the server now finishes the orphaned request: it stores the batch
    assert standin.wait_for(lambda: len(standin.delivered) == 5)
    wait_until(
        lambda: client.status().in_flight == 0,
        timeout=10,
        interval=0.01,
        message="client.status().in_flight == 0",
    )  # lease expired
    result = client.flush(timeout=10)
    assert result.outcome == "ok"
    assert result.duplicates == 5  # resent, recognised server-side, never stored twice
    assert standin.delivered == keys
    assert client.status().queue_depth == 0


def test_two_processes_on_one_queue_never_send_an_event_twice(
    standin, make_client, queue_path, key_id, secret, subprocess_env
) -> None:
    client = make_client()
    keys = {client.track("t", {"i": i}) for i in range(300)}
    args = [standin.url, key_id, str(queue_path)]
    children = [
        _spawn(FLUSH_SMALL_BATCHES, args, subprocess_env, secret, stdin=subprocess.PIPE)
        for _ in range(2)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [json.loads(child.communicate(timeout=30)[0]) for child in children]
    assert all(out["outcome"] in ("ok", "empty") for out in outputs)
    assert sum(out["delivered"] for out in outputs) == 300
    sent = Counter(k for r in standin.posts() for k in r.events)
    assert set(sent) == keys
    assert max(sent.values()) == 1  # no event was ever sent twice
    assert max(len(r.events) for r in standin.posts()) <= 7
    assert Store(queue_path).depth() == 0
