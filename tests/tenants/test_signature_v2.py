"""v2 signatures: a captured signature reads or writes nothing but its own request, once."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from django.conf import settings
from django.test import override_settings
from prometheus_client import REGISTRY

from codex_sdk.api import Api
from codex_sdk.events import build_event, encode_batch, encode_event
from flags.services import flag_update
from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tests.dbutil import database_url
from tests.factories import SigningKeyFactory
from tests.helpers import encode, make_event
from tests.procs import gunicorn_server
from tests.signing import django_headers, sign_headers

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
    }
}


def _send(client, method: str, path: str, body: bytes, headers: dict[str, str]):
    extra = {"content_type": "application/json"} if body else {}
    return client.generic(method, path, body, **extra, **django_headers(headers))


def _refused(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"].startswith("Codex-Signature")


def _store_event(signed, key: str) -> None:
    """An event of the tenant, stored by the service (whatever signatures the server takes)."""
    items = parse_body(encode(make_event(key))).items
    results = events_ingest(tenant_id=signed.tenant.id, key_id=signed.key.key_id, items=items)
    assert [r.status for r in results] == ["accepted"]


def _lookup_path(key: str) -> str:
    return "/v1/events/" + quote(key, safe="")


def _v1_count(tenant) -> float:
    labels = {"tenant": tenant.slug}
    return REGISTRY.get_sample_value("codex_auth_signature_v1_total", labels) or 0.0


def _set_v1_allowed(tenant, allowed: bool, capture) -> None:
    with capture(execute=True):  # the flag caches are invalidated at commit
        flag_update(
            tenant_id=tenant.id,
            values={"signatureV1Allowed": allowed},
            actor="test",
            via="cli",
            reason="v1 signatures",
        )


# --- bound to the request ---------------------------------------------------------------------
# Each probe first replays what a device signs today (v1: the body only), then a v2 signature.


@pytest.mark.django_db
def test_a_signature_captured_from_get_config_does_not_read_an_event(client, signed):
    _store_event(signed, "order-77")
    for version, code in (("v1", "signature_version_refused"), ("v2", "invalid_signature")):
        captured = signed.sign(b"", method="GET", path="/config", version=version)
        _refused(_send(client, "GET", _lookup_path("order-77"), b"", captured), code)
    captured = signed.sign(b"", method="GET", path="/config")
    assert _send(client, "GET", "/config", b"", captured).status_code == 200
    _refused(_send(client, "GET", _lookup_path("order-77"), b"", captured), "invalid_signature")


@pytest.mark.django_db
def test_a_posts_headers_and_body_resent_as_a_get_are_refused(client, signed):
    for n, (version, code) in enumerate(
        (("v1", "signature_version_refused"), ("v2", "invalid_signature"))
    ):
        key = f"order-79-{n}"
        body = encode(make_event(key))
        headers = signed.sign(body, version=version)
        assert _send(client, "POST", "/v1/events", body, headers).status_code == 202
        _refused(_send(client, "GET", _lookup_path(key), body, headers), code)
        _refused(_send(client, "GET", "/config", body, headers), code)


@pytest.mark.django_db
def test_a_lookup_signature_does_not_read_another_key(client, signed):
    _store_event(signed, "order-80")
    _store_event(signed, "order-81")
    today = signed.sign(b"", version="v1")
    response = _send(client, "GET", _lookup_path("order-81"), b"", today)
    _refused(response, "signature_version_refused")
    headers = signed.sign(b"", method="GET", path=_lookup_path("order-80"))
    _refused(_send(client, "GET", _lookup_path("order-81"), b"", headers), "invalid_signature")
    assert _send(client, "GET", _lookup_path("order-80"), b"", headers).status_code == 200


@pytest.mark.django_db
def test_a_changed_query_string_is_refused(client, signed):
    today = signed.sign(b"", version="v1")
    _refused(_send(client, "GET", "/config?device=back", b"", today), "signature_version_refused")
    headers = signed.sign(b"", method="GET", path="/config?device=front")
    _refused(_send(client, "GET", "/config?device=back", b"", headers), "invalid_signature")
    _refused(_send(client, "GET", "/config", b"", headers), "invalid_signature")
    assert _send(client, "GET", "/config?device=front", b"", headers).status_code == 200


@pytest.mark.django_db
def test_a_changed_body_or_method_is_refused(client, signed):
    body = encode(make_event("order-82"))
    headers = signed.sign(body)
    other = body.replace(b"order-82", b"order-83")
    _refused(_send(client, "POST", "/v1/events", other, headers), "invalid_signature")
    _refused(_send(client, "PUT", "/v1/events", body, headers), "invalid_signature")


# --- accepted once ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_same_post_sent_twice_is_refused_the_second_time(client, signed, version):
    body = encode(make_event(f"order-84-{version}"))
    headers = signed.sign(body, version=version)
    assert _send(client, "POST", "/v1/events", body, headers).status_code == 202
    _refused(_send(client, "POST", "/v1/events", body, headers), "replayed_request")
    # Signed afresh (a new webhook-id), the retry is answered as ever: a duplicate.
    assert _send(client, "POST", "/v1/events", body, signed.sign(body)).status_code == 200


@pytest.mark.django_db
def test_the_same_read_sent_twice_is_refused_the_second_time(client, signed):
    headers = signed.sign(b"", method="GET", path="/config")
    assert _send(client, "GET", "/config", b"", headers).status_code == 200
    _refused(_send(client, "GET", "/config", b"", headers), "replayed_request")


@pytest.mark.django_db
def test_a_webhook_id_is_remembered_per_key(client, signed, db):
    other = SigningKeyFactory(tenant=signed.tenant)
    body = encode(make_event("order-85"))
    mine = signed.sign(body, msg_id="msg_shared")
    theirs = sign_headers(other.key_id, other.secret, body, msg_id="msg_shared")
    assert _send(client, "POST", "/v1/events", body, mine).status_code == 202
    assert _send(client, "POST", "/v1/events", body, theirs).status_code == 200  # duplicate


@pytest.mark.django_db
def test_redis_down_accepts_the_request_and_counts_the_unchecked_id(client, signed):
    before = REGISTRY.get_sample_value("codex_auth_replay_store_errors_total") or 0.0
    body = encode(make_event("order-86"))
    with override_settings(CACHES=DEAD_REDIS):
        response = _send(client, "POST", "/v1/events", body, signed.sign(body))
    assert response.status_code == 202, response.content
    assert REGISTRY.get_sample_value("codex_auth_replay_store_errors_total") == before + 1


# --- v1, for POST /v1/events only, while the tenant allows it ---------------------------------


@pytest.mark.django_db
def test_v1_still_works_on_post_events_while_the_flag_is_on_and_is_counted(client, signed):
    before = _v1_count(signed.tenant)
    body = encode(make_event("order-87"))
    headers = signed.sign(body, version="v1")
    assert _send(client, "POST", "/v1/events", body, headers).status_code == 202
    assert _v1_count(signed.tenant) == before + 1
    _refused(_send(client, "POST", "/v1/events", body, headers), "replayed_request")
    v2 = signed.sign(body)
    assert _send(client, "POST", "/v1/events", body, v2).status_code == 200
    assert _v1_count(signed.tenant) == before + 1  # v2 is not counted


@pytest.mark.django_db
def test_with_the_flag_off_v1_is_refused_and_v2_still_works(
    client, signed, django_capture_on_commit_callbacks
):
    _set_v1_allowed(signed.tenant, False, django_capture_on_commit_callbacks)
    body = encode(make_event("order-88"))
    response = _send(client, "POST", "/v1/events", body, signed.sign(body, version="v1"))
    _refused(response, "signature_version_refused")
    assert "v2" in response.json()["error"]["message"]
    assert _send(client, "POST", "/v1/events", body, signed.sign(body)).status_code == 202
    _set_v1_allowed(signed.tenant, True, django_capture_on_commit_callbacks)
    body = encode(make_event("order-89"))
    response = _send(client, "POST", "/v1/events", body, signed.sign(body, version="v1"))
    assert response.status_code == 202


@pytest.mark.django_db
def test_v1_is_refused_on_get_config_and_on_lookups(client, signed):
    _store_event(signed, "order-90")
    for path in ("/config", _lookup_path("order-90")):
        response = _send(client, "GET", path, b"", signed.sign(b"", version="v1"))
        _refused(response, "signature_version_refused")


@pytest.mark.django_db
def test_v1_is_refused_on_a_get_of_the_events_path(client, signed):
    response = _send(client, "GET", "/v1/events", b"", signed.sign(b"", version="v1"))
    _refused(response, "signature_version_refused")


@pytest.mark.django_db
def test_a_wrong_v1_signature_is_still_invalid_signature(client, signed):
    body = encode(make_event())
    headers = sign_headers(signed.key.key_id, "whsec_" + "QUFB" * 11, body, version="v1")
    _refused(_send(client, "POST", "/v1/events", body, headers), "invalid_signature")


# --- across processes -------------------------------------------------------------------------


def test_a_webhook_id_used_in_one_process_is_refused_in_another(transactional_db, client, signed):
    env = {
        "DATABASE_URL": database_url(),
        "CODEX_TEST_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    with gunicorn_server(env) as (url, _proc):
        # gunicorn first, then this process: a device's v1 POST, then a v2 one.
        for version in ("v1", "v2"):
            body = encode(make_event(f"order-91-{version}"))
            headers = signed.sign(body, version=version) | {"Content-Type": "application/json"}
            response = httpx.post(url + "/v1/events", content=body, headers=headers, timeout=10)
            assert response.status_code == 202, response.text
            _refused(_send(client, "POST", "/v1/events", body, headers), "replayed_request")
        # This process first, then gunicorn; a read this time.
        headers = signed.sign(b"", method="GET", path="/config")
        assert _send(client, "GET", "/config", b"", headers).status_code == 200
        response = httpx.get(url + "/config", headers=headers, timeout=10)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "replayed_request"


# --- the SDK ----------------------------------------------------------------------------------


def test_sdk_retries_sign_afresh_so_a_resent_batch_converges(live_server, signed):
    api = Api(live_server.url, signed.key.key_id, signed.key.secret)
    body = encode_batch([encode_event(build_event("store.sale", {"n": 1}))])
    first = api.post_events(body, timeout=10)
    again = api.post_events(body, timeout=10)  # a retry after a lost answer: same bytes
    assert [r.status for r in first] == ["accepted"]
    assert [r.status for r in again] == ["duplicate"]
    config = api.get_config(None, timeout=10)
    assert config.config is not None
    assert api.lookup_event(first[0].idempotency_key, timeout=10).status == "accepted"
    assert api.lookup_event("a/b é?#", timeout=10) is None  # 404: signed, just not there
