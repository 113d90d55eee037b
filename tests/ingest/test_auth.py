"""Authentication of POST /v1/events: every 401/403 code, through HTTP."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from tenants.auth import SignatureAuthentication
from tenants.models import SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import encode, make_event
from tests.signing import django_headers, sign_headers

pytestmark = pytest.mark.django_db


def _post(client, body: bytes, headers: dict[str, str]):
    return client.generic(
        "POST", "/v1/events", body, content_type="application/json", **django_headers(headers)
    )


def _assert_401(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["rid"] == response["X-Request-ID"]
    assert response["WWW-Authenticate"].startswith("Codex-Signature")


def test_request_signed_by_standardwebhooks_library_is_accepted(client, signed):
    key = signed.key
    body = encode(make_event("swh-1"))
    msg_id = "msg_standardwebhooks_1"
    now = datetime.now(tz=UTC)
    signature = Webhook(key.secret).sign(msg_id, now, body.decode())
    headers = {
        "X-Codex-Key-Id": key.key_id,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    response = _post(client, body, headers)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "accepted"


def test_utf8_webhook_id_signed_by_standardwebhooks_is_accepted(client, signed):
    key = signed.key
    body = encode(make_event("swh-utf8"))
    msg_id = "msg_caf\u00e9_\u6771\u4eac"  # the library signs its UTF-8 bytes
    now = datetime.now(tz=UTC)
    signature = Webhook(key.secret).sign(msg_id, now, body.decode())
    headers = {
        "X-Codex-Key-Id": key.key_id,
        # What a WSGI server hands Django for those bytes on the wire: latin-1-decoded text.
        "webhook-id": msg_id.encode().decode("latin-1"),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    response = _post(client, body, headers)
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "missing", ["X-Codex-Key-Id", "webhook-id", "webhook-timestamp", "webhook-signature"]
)
def test_missing_any_signature_header_is_401_missing_signature(client, signed, missing):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body)
    del headers[missing]
    _assert_401(_post(client, body, headers), "missing_signature")


def test_wrong_signature_is_401_invalid_signature(client, signed):
    key = signed.key
    body = encode(make_event())
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    _assert_401(_post(client, body, sign_headers(key.key_id, other, body)), "invalid_signature")


def test_body_changed_after_signing_is_401_invalid_signature(client, signed):
    sign = signed.sign
    body = encode(make_event("tamper"))
    headers = sign(body)
    _assert_401(_post(client, body.replace(b"tamper", b"tamped"), headers), "invalid_signature")


@pytest.mark.parametrize("value", ["v1,not-base64!!", "v2,AAAA", "garbage", "v1,"])
def test_malformed_signature_values_are_401_invalid_signature(client, signed, value):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body) | {"webhook-signature": value}
    _assert_401(_post(client, body, headers), "invalid_signature")


def test_non_numeric_timestamp_is_401_invalid_signature(client, signed):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body) | {"webhook-timestamp": "yesterday"}
    _assert_401(_post(client, body, headers), "invalid_signature")


def test_one_matching_signature_among_several_is_accepted(client, signed):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body)
    headers["webhook-signature"] = "v1,AAAA v2,whatever " + headers["webhook-signature"]
    assert _post(client, body, headers).status_code == 202


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamp_outside_300s_is_401_timestamp_out_of_tolerance(client, signed, skew):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body, timestamp=int(time.time()) + skew)
    _assert_401(_post(client, body, headers), "timestamp_out_of_tolerance")


@pytest.mark.parametrize("skew", [-290, 290])
def test_timestamp_within_300s_is_accepted(client, signed, skew):
    sign = signed.sign
    body = encode(make_event())
    assert _post(client, body, sign(body, timestamp=int(time.time()) + skew)).status_code == 202


@pytest.mark.parametrize(
    "key_id", ["nope", "ck_" + "0" * 32 + "_abcdef", "ck_zz_x", "ck_" + "f" * 32 + "_1"]
)
def test_unknown_key_is_401_unknown_key(client, signed, key_id):
    key = signed.key
    body = encode(make_event())
    _assert_401(_post(client, body, sign_headers(key_id, key.secret, body)), "unknown_key")


def test_revoked_key_is_401_revoked_key(client, signed):
    tenant = signed.tenant
    key = signed.key
    sign = signed.sign
    with tenant_scope(tenant.id):
        SigningKey.objects.filter(tenant=tenant, key_id=key.key_id).update(
            status=SigningKey.Status.REVOKED
        )
    body = encode(make_event())
    _assert_401(_post(client, body, sign(body)), "revoked_key")


def test_suspended_tenant_is_403_tenant_suspended(client, signed):
    tenant = signed.tenant
    sign = signed.sign
    with system_scope("test"):
        Tenant.objects.filter(id=tenant.id).update(status=Tenant.Status.SUSPENDED)
    body = encode(make_event())
    response = _post(client, body, sign(body))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended"


def test_key_of_tenant_a_cannot_claim_tenant_b(client, db):
    a, b = TenantFactory(), TenantFactory()
    key_a, key_b = SigningKeyFactory(tenant=a), SigningKeyFactory(tenant=b)
    body = encode(make_event())
    # B's key id with A's secret: the key id decides the tenant, and A's secret does not verify.
    response = _post(client, body, sign_headers(key_b.key_id, key_a.secret, body))
    _assert_401(response, "invalid_signature")


def test_failed_authentication_does_not_spend_rate_limit_quota(client, signed, settings):
    settings.CODEX_INGEST_RATE_PER_SEC = 3
    key = signed.key
    sign = signed.sign
    body = encode(make_event())
    bad = sign_headers(key.key_id, "whsec_" + base64.b64encode(b"y" * 32).decode(), body)
    for _ in range(10):
        assert _post(client, body, bad).status_code == 401
    docs = [encode(make_event()) for _ in range(3)]
    # Three good requests inside one window: none limited (a window edge can only help).
    statuses = [_post(client, d, sign(d)).status_code for d in docs]
    assert statuses == [202, 202, 202]


def test_authenticator_declares_www_authenticate_so_drf_keeps_401():
    assert SignatureAuthentication().authenticate_header(None).startswith("Codex-Signature")


def test_error_body_is_json_with_code_message_and_rid(client, signed):
    response = client.post(
        "/v1/events", data=json.dumps(make_event()), content_type="application/json"
    )
    _assert_401(response, "missing_signature")
    assert set(response.json()["error"]) == {"code", "message", "rid"}
