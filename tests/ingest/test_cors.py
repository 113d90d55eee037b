"""CORS on the signed endpoints: preflights need no signature; headers for a tenant's origins."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from flags.registry import FlagValueError, spec_for
from flags.selectors import effective_flags, origins_forget
from flags.services import flag_update
from ingest.cors import PREFLIGHT_MAX_AGE
from tests.factories import TenantFactory
from tests.signing import django_headers

pytestmark = pytest.mark.django_db

APP = "http://127.0.0.1:8765"
OTHER = "https://elsewhere.example"


@pytest.fixture(autouse=True)
def _forget_origins():
    origins_forget()
    yield
    origins_forget()


def _allow(tenant, *origins: str) -> None:
    flag_update(tenant_id=tenant.pk, values={"allowedOrigins": list(origins)}, actor="t", via="cli")
    origins_forget()


def _preflight(client, path: str, origin: str, method: str = "POST"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-codex-key-id,webhook-id,"
        "webhook-timestamp,webhook-signature",
    )


def _event(key: str) -> bytes:
    return json.dumps(
        {"idempotency_key": key, "type": "t", "occurred_at": "2026-01-15T10:00:00Z"}
    ).encode()


def test_allowed_origins_is_empty_by_default_and_nothing_is_allowed(client, signed):
    assert effective_flags(tenant_id=signed.tenant.pk)["allowedOrigins"] == []
    response = _preflight(client, "/v1/events", APP)
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response
    body = _event("cors-0")
    answer = client.post(
        "/v1/events",
        body,
        content_type="application/json",
        HTTP_ORIGIN=APP,
        **django_headers(signed.sign(body)),
    )
    assert answer.status_code == 202
    assert "Access-Control-Allow-Origin" not in answer


@pytest.mark.parametrize("path", ["/v1/events", "/config", "/v1/events/some%2Fkey"])
def test_preflight_of_an_allowed_origin_is_answered_without_a_signature_and_cached(
    client, signed, path
):
    _allow(signed.tenant, APP)
    response = _preflight(client, path, APP, "GET" if path != "/v1/events" else "POST")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Max-Age"] == str(PREFLIGHT_MAX_AGE)
    allowed = response["Access-Control-Allow-Headers"].lower()
    for header in ("x-codex-key-id", "webhook-id", "webhook-timestamp", "webhook-signature"):
        assert header in allowed
    assert "content-type" in allowed
    assert "if-none-match" in allowed
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Origin" in response["Vary"]


def test_preflight_of_an_origin_no_tenant_allows_is_refused(client, signed):
    _allow(signed.tenant, APP)
    for origin in (OTHER, APP + "0", APP.replace("http:", "https:")):
        response = _preflight(client, "/v1/events", origin)
        assert "Access-Control-Allow-Origin" not in response, origin
    assert "Access-Control-Allow-Origin" not in _preflight(client, "/v1/events", APP, "DELETE")


def test_signed_answers_carry_the_origin_and_expose_the_headers_the_sdk_reads(client, signed):
    _allow(signed.tenant, APP, OTHER)
    body = _event("cors-1")
    answer = client.post(
        "/v1/events",
        body,
        content_type="application/json",
        HTTP_ORIGIN=APP,
        **django_headers(signed.sign(body)),
    )
    assert answer.status_code == 202
    assert answer["Access-Control-Allow-Origin"] == APP
    exposed = answer["Access-Control-Expose-Headers"]
    for header in ("ETag", "Retry-After", "RateLimit", "RateLimit-Policy", "Date", "X-Request-ID"):
        assert header in exposed
    config = client.get(
        "/config",
        HTTP_ORIGIN=OTHER,
        **django_headers(signed.sign(b"", method="GET", path="/config")),
    )
    assert config.status_code == 200
    assert config["Access-Control-Allow-Origin"] == OTHER
    assert "ETag" in config["Access-Control-Expose-Headers"]
    assert "Origin" in config["Vary"]
    assert "X-Codex-Key-Id" in config["Vary"]
    lookup = client.get(
        "/v1/events/cors-1",
        HTTP_ORIGIN=APP,
        **django_headers(signed.sign(b"", method="GET", path="/v1/events/cors-1")),
    )
    assert lookup.status_code == 200
    assert lookup["Access-Control-Allow-Origin"] == APP


def test_another_tenants_origin_gets_no_cors_on_my_answers(client, signed, db):
    other = TenantFactory()
    _allow(other, OTHER)
    _allow(signed.tenant, APP)
    body = _event("cors-2")
    answer = client.post(
        "/v1/events",
        body,
        content_type="application/json",
        HTTP_ORIGIN=OTHER,
        **django_headers(signed.sign(body)),
    )
    assert answer.status_code == 202
    assert "Access-Control-Allow-Origin" not in answer


def test_an_unsigned_answer_is_readable_by_an_origin_some_tenant_allows(client, signed):
    _allow(signed.tenant, APP)
    answer = client.post("/v1/events", b"{}", content_type="application/json", HTTP_ORIGIN=APP)
    assert answer.status_code == 401
    assert answer["Access-Control-Allow-Origin"] == APP
    refused = client.post("/v1/events", b"{}", content_type="application/json", HTTP_ORIGIN=OTHER)
    assert "Access-Control-Allow-Origin" not in refused


def test_other_paths_are_untouched(client, signed):
    _allow(signed.tenant, APP)
    response = client.get("/healthz", HTTP_ORIGIN=APP)
    assert "Access-Control-Allow-Origin" not in response


def test_allowed_origins_parse_normalise_and_refuse_junk(signed, capsys):
    spec = spec_for("allowedOrigins")
    assert spec.parse(" https://A.example/, http://127.0.0.1:8001 https://a.example") == [
        "https://a.example",
        "http://127.0.0.1:8001",
    ]
    assert spec.parse("") == []
    for junk in ("ftp://x.example", "https://x.example/path", "x.example", "*"):
        with pytest.raises(FlagValueError, match="is not an origin") as caught:
            spec.parse(junk)
        assert caught.value.code == "invalid_flag"
    with pytest.raises(FlagValueError, match="up to 20 origins") as caught:
        spec.validate(["https://a.example"] * 21)
    call_command(
        "flags",
        "set",
        "--tenant",
        signed.tenant.slug,
        "allowedOrigins=https://a.example,https://b.example",
    )
    assert effective_flags(tenant_id=signed.tenant.pk)["allowedOrigins"] == [
        "https://a.example",
        "https://b.example",
    ]


def test_the_admin_flag_editor_sets_and_refuses_allowed_origins(admin_client, db):
    from django.urls import reverse

    tenant = TenantFactory()
    url = reverse("admin:flags_tenantflagset_change", args=[tenant.pk])
    response = admin_client.post(
        url, {"allowedOrigins": "https://Pos.example/, http://k.example:8080"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert effective_flags(tenant_id=tenant.pk)["allowedOrigins"] == [
        "https://pos.example",
        "http://k.example:8080",
    ]
    page = admin_client.get(url).content.decode()
    assert "https://pos.example, http://k.example:8080" in page
    refused = admin_client.post(url, {"allowedOrigins": "https://pos.example/path"})
    assert refused.status_code == 200
    assert "errornote" in refused.content.decode()
