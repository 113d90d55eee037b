"""A write whose connection dies during COMMIT (a failover) answers 503; the retry lands once."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.dbutil import database_url, owner_connect
from tests.helpers import encode, make_event
from tests.procs import gunicorn_server
from tests.signing import sign_headers

pytestmark = pytest.mark.slow

# A deferred constraint trigger runs inside COMMIT: it holds the request's commit open (as a
# primary waiting for its synchronous standby does) until the test terminates the backend.
_PAUSE_SQL = """
CREATE FUNCTION test_pause_in_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.idempotency_key LIKE 'commit-fault-%' THEN
        PERFORM pg_sleep(20);
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_pause_in_commit AFTER INSERT ON ingest_idempotency
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_pause_in_commit();
"""
_UNPAUSE_SQL = """
DROP TRIGGER IF EXISTS test_pause_in_commit ON ingest_idempotency;
DROP FUNCTION IF EXISTS test_pause_in_commit();
"""


def _post(url: str, key, doc) -> httpx.Response:
    body = encode(doc)
    # Each attempt is signed afresh, as the SDK does: the same event, the same idempotency key.
    headers = sign_headers(key.key_id, key.secret, body) | {"Content-Type": "application/json"}
    return httpx.post(url + "/v1/events", content=body, headers=headers, timeout=30)


def _terminate_the_commit(killed: list[int], stop: threading.Event) -> None:
    """From a second owner connection: terminate the backend sleeping inside COMMIT."""
    with owner_connect(autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()"
            ).fetchall()
            for (pid,) in rows:
                conn.execute("SELECT pg_terminate_backend(%s)", [pid])
                killed.append(pid)
            if killed:
                return
            time.sleep(0.02)


def _rows(key: str) -> int:
    with owner_connect(autocommit=True) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM ingest_event WHERE idempotency_key = %(k)s)"
            " + (SELECT count(*) FROM ingest_idempotency WHERE idempotency_key = %(k)s) * 1000",
            {"k": key},
        ).fetchone()[0]


def test_a_connection_killed_during_commit_answers_503_and_the_retry_stores_one_row(
    transactional_db, signed
):
    doc = make_event("commit-fault-1")
    with owner_connect(autocommit=True) as conn:
        conn.execute(_PAUSE_SQL)
    try:
        with gunicorn_server({"DATABASE_URL": database_url()}) as (url, _proc):
            killed: list[int] = []
            stop = threading.Event()
            killer = threading.Thread(target=_terminate_the_commit, args=(killed, stop))
            killer.start()
            try:
                started = time.monotonic()
                first = _post(url, signed.key, doc)
                elapsed = time.monotonic() - started
            finally:
                stop.set()
                killer.join(timeout=10)
            with owner_connect(autocommit=True) as conn:
                conn.execute(_UNPAUSE_SQL)

            # The commit never finished: 503 with Retry-After (never 500, never 2xx), no row.
            assert killed, "the commit was never seen waiting"
            assert first.status_code == 503, first.text
            assert first.json()["error"]["code"] == "unavailable"
            assert int(first.headers["Retry-After"]) > 0
            assert elapsed < 10
            assert _rows("commit-fault-1") == 0

            # The SDK's retry: same event, same key. The same worker's connection was the one
            # killed; the retry gets a fresh one and stores the event once.
            retry = _post(url, signed.key, doc)
            assert retry.status_code == 202, retry.text
            assert retry.json()["status"] == "accepted"
            again = _post(url, signed.key, doc)
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "duplicate"
            assert _rows("commit-fault-1") == 1001  # one ledger row, one idempotency row
    finally:
        with owner_connect(autocommit=True) as conn:
            conn.execute(_UNPAUSE_SQL)


def test_a_write_on_a_read_only_server_answers_503_not_500(transactional_db, signed):
    """A restarted or demoted primary is a standby for a moment: the write is retried later."""
    from urllib.parse import quote

    read_only = database_url()
    read_only += (
        ("&" if "?" in read_only else "?")
        + "options="
        + quote("-c default_transaction_read_only=on")
    )
    doc = make_event("read-only-1")
    with gunicorn_server({"DATABASE_URL": read_only}) as (url, _proc):
        response = _post(url, signed.key, doc)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert _rows("read-only-1") == 0
