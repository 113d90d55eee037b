"""The SDK against the live server at its edges: full-size batches, revoked keys, clock skew,
and the codex-sdk CLI fed the real `provision_tenant --json` output."""

from __future__ import annotations

import io
import json
import os
import stat
import time

import pytest
from django.core.management import call_command

from codex_sdk import cli
from tenants.models import SigningKey
from tenants.scope import system_scope
from tenants.services.keys import signing_key_revoke
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import SDK_INTERVAL as INTERVAL
from tests.helpers import set_flags, stored_keys

# Near-1 MiB batches take a while on a loaded 2-core machine: a longer per-request timeout.
SDK_TIMEOUT = 20.0


@pytest.fixture
def device(transactional_db):
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    set_flags(tenant, minIntervalSec=INTERVAL, ingestRatePerSec=1000)
    return tenant, key


def test_500_events_near_the_body_limit_are_split_and_all_accepted(
    device, live_server, make_client
):
    tenant, key = device
    client = make_client(live_server.url, key)
    # ~2.1 KB each: 500 of them are about 1.05 MiB, so one full batch must not fit one body.
    tracked = [client.track("store.scan", {"blob": "x" * 2048, "n": i}) for i in range(500)]
    result = client.flush(timeout=60)
    assert result.outcome == "ok", result
    assert result.accepted == 500
    assert result.dead_lettered == 0
    assert result.requests == 2
    assert sorted(stored_keys(tenant)) == sorted(tracked)


def test_more_than_500_small_events_go_in_batches_of_500(device, live_server, make_client):
    tenant, key = device
    client = make_client(live_server.url, key)
    tracked = [client.track("store.scan", {"n": i}) for i in range(1001)]
    result = client.flush(timeout=60)
    assert (result.outcome, result.accepted, result.requests) == ("ok", 1001, 3)
    assert len(stored_keys(tenant)) == 1001
    assert set(stored_keys(tenant)) == set(tracked)


def test_largest_payloads_the_sdk_accepts_are_accepted_by_the_server(
    device, live_server, make_client
):
    tenant, key = device
    client = make_client(live_server.url, key)
    # Just under 64 KiB as the SDK measures it; non-ASCII is escaped on the wire.
    big = client.track("store.blob", {"b": "y" * (64 * 1024 - 20)})
    uni = client.track("store.blob", {"b": "é" * (64 * 1024 // 6 - 10)})
    result = client.flush(timeout=30)
    assert result.outcome == "ok", result
    assert sorted(stored_keys(tenant)) == sorted([big, uni])


def test_revoked_key_keeps_events_queued_and_does_not_spin(device, live_server, make_client):
    tenant, key = device
    client = make_client(live_server.url, key, config_refresh_sec=None)
    client.refresh_config(force=True)
    with system_scope("test"):
        row = SigningKey.objects.get(key_id=key.key_id)
    signing_key_revoke(key=row, actor="test")
    client.start()
    for i in range(5):
        client.track("store.sale", {"n": i})
    time.sleep(INTERVAL * 2 + 1)
    st = client.status()
    assert st.queue_depth == 5
    assert st.last_sync_outcome == "failed"
    assert "revoked_key" in (st.last_sync_error or "")
    # one pass per interval at most, and config polls no faster than its TTL
    assert st.post_requests <= 3, st
    assert st.config_requests <= 3, st
    assert stored_keys(tenant) == []


def test_device_clock_an_hour_off_is_corrected_from_the_servers_date(
    device, live_server, make_client
):
    tenant, key = device
    client = make_client(live_server.url, key)
    client._api.clock_offset = 3600.0  # the device's clock runs an hour ahead
    k = client.track("store.sale", {"n": 1})
    result = client.flush(timeout=20)
    assert result.outcome == "ok", result
    assert stored_keys(tenant) == [k]
    assert abs(client._api.clock_offset) < 5


def test_cli_login_status_send_with_real_provisioning_output(
    transactional_db, live_server, tmp_path, capsys
):
    out = io.StringIO()
    call_command("provision_tenant", "cli-edge", "--device", "front", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    secrets = [k["secret"] for k in doc["keys"]]
    prov = tmp_path / "prov.json"
    prov.write_text(out.getvalue())
    creds = tmp_path / "home" / "credentials.json"
    queue = tmp_path / "home" / "queue.sqlite3"
    common = ["--config", str(creds), "--queue", str(queue)]

    code = cli.main(["login", "--from-json", str(prov), "--base-url", live_server.url, *common])
    assert code == 0
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    saved = json.loads(creds.read_text())
    assert saved["device"] == "front"

    assert cli.main(["status", "--json", *common]) == 0
    assert cli.main(["send", "door.opened", "--payload", '{"door": 3}', *common]) == 0
    assert cli.main(["status", *common]) == 0
    assert stat.S_IMODE(os.stat(queue).st_mode) == 0o600
    captured = capsys.readouterr()
    assert "accepted: event" in captured.out
    for secret in secrets:
        assert secret not in captured.out + captured.err
