"""CODEX_SECRETS_KEY rotation: re-encrypt with the new key, retire the old one, never a 500."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from codex import env as envreader
from tenants import keycache
from tenants.models import AuditLog, SigningKey
from tenants.scope import system_scope
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import make_event

K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def post_signed(client):
    """POST /v1/events through the test client, signed by the function given."""
    from tests.helpers import api_request, encode

    def post(doc, *, sign_with):
        return api_request(client, None, "POST", "/v1/events", encode(doc), sign_with=sign_with)

    return post


def _tokens() -> list[str]:
    with system_scope("test"):
        return list(SigningKey.objects.values_list("secret_encrypted", flat=True))


@pytest.mark.django_db
def test_rotate_then_retire_the_old_key_and_signed_requests_still_pass(
    settings, db, post_signed, capsys
):
    settings.CODEX_SECRETS_KEY = K1
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)  # encrypted with K1
    settings.CODEX_SECRETS_KEY = f"{K2},{K1}"
    call_command("rotate_secrets_key")
    assert "re-encrypted with the first key" in capsys.readouterr().out
    for token in _tokens():
        Fernet(K2.encode()).decrypt(token.encode())  # every secret now under K2
    before = _tokens()
    call_command("rotate_secrets_key")  # idempotent: nothing left to change
    assert _tokens() == before
    with system_scope("test"):
        audits = list(AuditLog.objects.filter(action="secrets_key.rotate").order_by("id"))
    assert [a.new["reencrypted"] for a in audits][-1] == 0
    assert all("whsec_" not in str(a.new) for a in audits)

    settings.CODEX_SECRETS_KEY = K2  # K1 retired
    keycache.clear()
    response = post_signed(make_event(), sign_with=_signer(key))
    assert response.status_code == 202, response.content


def _signer(key):
    from tests.signing import sign_headers

    return lambda body: sign_headers(key.key_id, key.secret, body)


@pytest.mark.django_db
def test_a_secret_no_key_decrypts_answers_503_and_logs_the_key_id(
    settings, db, post_signed, caplog
):
    settings.CODEX_SECRETS_KEY = K1
    key = SigningKeyFactory(tenant=TenantFactory())
    settings.CODEX_SECRETS_KEY = K2  # K1 dropped without rotating first
    keycache.clear()
    with caplog.at_level(logging.ERROR):
        response = post_signed(make_event(), sign_with=_signer(key))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response["Retry-After"]
    assert any(getattr(r, "key_id", None) == key.key_id for r in caplog.records)


def test_a_malformed_secrets_key_refuses_to_start_and_does_not_echo_it():
    bad = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="entry 2 of 2") as info:
        envreader.read(
            {
                "CODEX_ENV": "production",
                "SECRET_KEY": "s" * 50,
                "DATABASE_URL": "postgresql://u@h/db",
                "REDIS_URL": "redis://h:6379/0",
                "ALLOWED_HOSTS": "x.example",
                "METRICS_TOKEN": "m" * 40,
                "CODEX_SECRETS_KEY": f"{K1},{bad}",
            }
        )
    assert bad not in str(info.value)
