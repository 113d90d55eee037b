"""The SDK's Client.lookup and `codex-sdk status --event KEY` against the real server."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from codex_sdk import Client, ServerError
from codex_sdk.cli import main
from codex_sdk.credentials import Credentials, save
from ingest.services.deadletters import deadletter_record
from ingest.services.enrich import events_drain
from tenants.models import SigningKey
from tenants.scope import tenant_scope
from tenants.services.keys import signing_key_revoke
from tests.factories import SigningKeyFactory, TenantFactory


@dataclass(frozen=True)
class Device:
    """A tenant, its key and an SDK client signing with it against the live server."""

    tenant: object
    key: object
    client: Client


@pytest.fixture
def device(live_server, db, make_client):
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    return Device(tenant=tenant, key=key, client=make_client(live_server.url, key))


def test_client_lookup_follows_an_event_from_accepted_to_enriched(device):
    tenant = device.tenant
    client = device.client
    key = client.track("sale.completed", {"amount": "1.00", "currency": "EUR"})
    assert client.lookup(key) is None  # still only on the device
    assert client.flush().statuses[key] == "accepted"
    fate = client.lookup(key)
    assert (fate.status, fate.idempotency_key, fate.type) == ("accepted", key, "sale.completed")
    assert fate.enriched_at is None
    events_drain(tenant_id=tenant.id)
    fate = client.lookup(key)
    assert fate.status == "enriched"
    assert fate.enriched_at


def test_client_lookup_of_a_dead_lettered_event_names_stage_and_error_class(device):
    tenant = device.tenant
    client = device.client
    key = client.track("sale.completed", {})
    client.flush()
    event_id = client.lookup(key).id
    deadletter_record(
        tenant_id=tenant.id, failures={event_id: KeyError("x")}, attempts=3, first_failed_at=None
    )
    fate = client.lookup(key)
    assert (fate.status, fate.stage, fate.error_class) == (
        "dead_lettered",
        "enrich",
        "builtins.KeyError",
    )


def test_client_lookup_does_not_see_another_tenants_event(device, live_server, db, make_client):
    client = device.client
    key = client.track("door.opened", {})
    client.flush()
    other = SigningKeyFactory(tenant=TenantFactory())
    assert make_client(live_server.url, other).lookup(key) is None


def test_lookup_with_a_revoked_key_raises_the_servers_401(device):
    tenant = device.tenant
    key = device.key
    client = device.client
    with tenant_scope(tenant.id):
        row = SigningKey.objects.get(tenant_id=tenant.id, key_id=key.key_id)
    signing_key_revoke(key=row, actor="test")
    with pytest.raises(ServerError, match="HTTP 401") as caught:
        client.lookup("anything")
    assert caught.value.status == 401


def test_cli_status_event_prints_the_fate_and_fails_for_an_unknown_key(
    device, live_server, tmp_path, capsys
):
    key = device.key
    client = device.client
    idem = client.track("door.opened", {})
    client.flush()
    creds = tmp_path / "creds.json"
    save(creds, Credentials(base_url=live_server.url, key_id=key.key_id, secret=key.secret))
    common = ["--config", str(creds), "--queue", str(tmp_path / "cli.sqlite3")]
    assert main([*common, "status", "--event", idem]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"accepted: event {idem} (#")
    assert main([*common, "status", "--event", idem, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "accepted"
    assert main([*common, "status", "--event", "never-sent"]) == 1
    assert "has no event 'never-sent'" in capsys.readouterr().err
