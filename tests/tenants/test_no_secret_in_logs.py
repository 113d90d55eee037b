"""No secret ever reaches a log line: provisioning, rotations, ingest, the admin, all captured."""

from __future__ import annotations

import base64
import logging
import re
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse

from codex.logconfig import JsonFormatter
from tenants.models import SigningKey, Tenant
from tenants.scope import system_scope
from tenants.services.keys import signing_key_rotate
from tenants.services.tenants import tenant_provision
from tests.helpers import api_request, encode, make_event, staff_client

WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]{8,}")


@pytest.mark.django_db
def test_no_secret_appears_in_any_log_line(client, settings, caplog):
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CODEX_SECRETS_KEY = k1
    secrets: list[str] = [k1, k2]

    result = tenant_provision(slug="logs", devices=["front"], actor="test")
    secrets += [k.secret for k in result.keys if k.secret]
    with system_scope("test"):
        tenant = Tenant.objects.get(id=result.tenant_id)
    new = signing_key_rotate(tenant=tenant, overlap=timedelta(0), actor="t")
    secrets.append(new.secret)
    body = encode(make_event())
    response = api_request(client, new, "POST", "/v1/events", body)
    assert response.status_code == 202
    settings.CODEX_SECRETS_KEY = f"{k2},{k1}"
    call_command("rotate_secrets_key")
    staff_client(superuser=True, client=client)
    with system_scope("test"):
        ids = list(SigningKey.objects.filter(status="active").values_list("id", flat=True))
    rotated = client.post(
        reverse("admin:tenants_signingkey_changelist"),
        {"action": "rotate_keys", "_selected_action": [str(i) for i in ids]},
    )
    shown = WHSEC.findall(rotated.content.decode())
    assert shown  # the admin showed the new secrets once, on the page ...
    secrets += shown
    with system_scope("test"):
        secrets += list(SigningKey.objects.values_list("secret_encrypted", flat=True))

    lines = [formatter.format(record) for record in caplog.records]
    lines += [str(record.__dict__) for record in caplog.records]
    assert lines, "nothing was logged: the test would prove nothing"
    raw = [
        base64.b64encode(base64.b64decode(s.removeprefix("whsec_"))).decode()
        for s in secrets
        if s.startswith("whsec_")
    ]
    for line in lines:  # ... and no log line ever carries one
        assert not WHSEC.search(line), line
        for secret in secrets + raw:
            assert secret not in line
