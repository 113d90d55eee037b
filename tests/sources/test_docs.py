"""docs/sources.md's curl + openssl commands, run with bash against a live server, as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.models import EnrichedEvent, Event
from ingest.services.enrich import events_drain
from tenants.scope import tenant_scope
from tests.factories import TenantFactory, WebhookSourceFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "sources.md"
pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="docs/sources.md's commands need openssl and curl (NOT TESTED: install them)",
)


def _block(name: str) -> str:
    match = re.search(rf"<!-- docs-test: {name} -->\n```bash\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no docs-test block {name!r} in docs/sources.md"
    return match.group(1)


def _run(script: str, url: str, secret: str) -> dict:
    env = {**os.environ, "SOURCE_URL": url, "SECRET": secret}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("kind", "secret", "etype", "amount"),
    [
        (
            "shopify",
            "shpss_demo_0123456789abcdef0123456789",
            "shopify.orders.create",
            (40300, "USD"),
        ),
        ("stripe", "whsec_demo_0123456789abcdef", "stripe.charge.succeeded", (1099, "USD")),
    ],
)
def test_the_documented_curl_delivery_is_accepted_and_enriched(
    wide_live_server,
    db,
    kind,
    secret,
    etype,
    amount,
):
    tenant = TenantFactory()
    info = WebhookSourceFactory(tenant=tenant, kind=kind, secret=secret, actor="t")
    answer = _run(_block(kind), wide_live_server.url + info.path, secret)
    assert answer["status"] == "accepted"
    with tenant_scope(tenant.id):
        event = Event.objects.get(id=answer["id"])
    assert event.type == etype
    events_drain(tenant_id=tenant.id)
    with tenant_scope(tenant.id):
        enriched = EnrichedEvent.objects.get(tenant=tenant, event_id=answer["id"])
    assert (enriched.amount_minor, enriched.currency) == amount
    # A wrong secret, same commands: refused.
    refused = _run(_block(kind), wide_live_server.url + info.path, secret + "x")
    assert refused["error"]["code"] == "invalid_signature"
