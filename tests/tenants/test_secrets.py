"""Secrets never reach logs or the audit trail (captured at DEBUG, before any redaction)."""

from __future__ import annotations

import io
import json
import logging

from django.core.management import call_command

from tenants.models import AuditLog
from tenants.scope import system_scope


def _record_text(record: logging.LogRecord) -> str:
    # Everything a formatter or a log shipper could see: message, args and `extra` fields.
    return record.getMessage() + repr(record.args) + repr(vars(record))


def test_secrets_never_logged_or_audited_during_provision_rotate_revoke(db, caplog):
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    call_command(
        "provision_tenant", "acme", "--device", "front", "--json", stdout=out, stderr=io.StringIO()
    )
    secrets = [k["secret"] for k in json.loads(out.getvalue())["keys"]]
    rotated = io.StringIO()
    call_command(
        "rotate_signing_key", "acme", "--device", "front", stdout=rotated, stderr=io.StringIO()
    )
    secrets.append(rotated.getvalue().split("secret: ")[1].split()[0])
    call_command("revoke_device", "acme", "front", stdout=io.StringIO(), stderr=io.StringIO())
    assert len(secrets) == 3
    assert all(s.startswith("whsec_") for s in secrets)
    assert caplog.records, "expected some log records to inspect"
    for record in caplog.records:
        text = _record_text(record)
        assert "whsec_" not in text, record.name
        for secret in secrets:
            assert secret.removeprefix("whsec_") not in text
    with system_scope("test-check"):
        for old, new in AuditLog.objects.values_list("old", "new"):
            assert "whsec_" not in json.dumps([old, new])
