"""The write's answer for a key a concurrent request commits while this one waits on it."""

from __future__ import annotations

import threading

from django.db import connection, connections, transaction

from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tests.factories import TenantFactory
from tests.helpers import encode, make_event, wait_until


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_locks, not pg_stat_activity: the app role may not read other sessions' activity.
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


def _in_thread(target) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_key_committed_while_the_insert_waited_is_a_duplicate_with_its_id_and_a_new_key_stored(
    transactional_db,
):
    """The write's one statement cannot see a row committed after its snapshot; the follow-up can.

    A holds key `race` uncommitted; B's batch (`race` and a new key) waits on it; A commits. B
    must answer `race` as a duplicate of A's row (same id) and still store its new key once.
    """
    tenant = TenantFactory()
    holding = threading.Event()
    release = threading.Event()

    def first():
        with transaction.atomic():
            [result] = events_ingest(
                tenant_id=tenant.id, key_id="a", items=parse_body(encode(make_event("race"))).items
            )
            holding.set()
            release.wait(30)
        return result

    def second():
        body = encode({"events": [make_event("race"), make_event("fresh")]})
        return events_ingest(tenant_id=tenant.id, key_id="b", items=parse_body(body).items)

    thread_a, out_a = _in_thread(first)
    assert holding.wait(30)
    thread_b, out_b = _in_thread(second)
    try:
        wait_until(_waiting_on_a_lock, message="the second write waiting on the first's key")
    finally:
        release.set()
    thread_a.join(30)
    thread_b.join(30)
    assert "error" not in out_a, out_a
    assert "error" not in out_b, out_b
    race, fresh = out_b["value"]
    assert out_a["value"].status == "accepted"
    assert (race.status, race.id) == ("duplicate", out_a["value"].id)
    assert fresh.status == "accepted"
    assert fresh.id not in (None, race.id)
