"""Hostile input that once answered 500: each case now gets its contract code (found by fuzzing)."""

from __future__ import annotations

import pytest

from tenants.selectors import signing_key_resolve
from tests.helpers import encode, make_event
from tests.signing import django_headers

pytestmark = pytest.mark.django_db


def _post(client, body: bytes, headers: dict[str, str]):
    return client.generic(
        "POST", "/v1/events", body, content_type="application/json", **django_headers(headers)
    )


def _assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["rid"] == response["X-Request-ID"]


def test_batch_item_with_lone_surrogate_idempotency_key_is_rejected_not_500(client, signed):
    sign = signed.sign
    body = b'{"events": [{"idempotency_key": "a\\ud800"}]}'
    response = _post(client, body, sign(body))
    assert response.status_code == 200, response.content
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "invalid_event"


def test_unknown_field_named_with_lone_surrogate_is_400_invalid_request(client, signed):
    sign = signed.sign
    body = b'{"idempotency_key": "k", "\\udfff": 1}'
    _assert_error(_post(client, body, sign(body)), 400, "invalid_request")


def test_batch_item_with_lone_surrogate_field_name_is_rejected_not_500(client, signed):
    sign = signed.sign
    body = b'{"events": [{"idempotency_key": "k", "\\ud800x": 1}]}'
    response = _post(client, body, sign(body))
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["status"] == "rejected"


@pytest.mark.parametrize("digits", [309, 400, 2048])
def test_huge_timestamp_is_401_timestamp_out_of_tolerance(client, signed, digits):
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body)
    headers["webhook-timestamp"] = "9" * digits
    response = _post(client, body, headers)
    _assert_error(response, 401, "timestamp_out_of_tolerance")


@pytest.mark.parametrize("suffix", ["\x00", "ab\x00cd", "x" * 2000, "a b", "é"])
def test_key_id_with_garbage_suffix_is_401_unknown_key(client, signed, suffix):
    key = signed.key
    sign = signed.sign
    body = encode(make_event())
    headers = sign(body)
    headers["X-Codex-Key-Id"] = key.key_id.rsplit("_", 1)[0] + "_" + suffix
    _assert_error(_post(client, body, headers), 401, "unknown_key")


def test_key_id_with_non_ascii_digits_names_no_tenant(signed):
    # int() and uuid.UUID accept Unicode digits; a key id must be plain ASCII hex.
    assert signing_key_resolve("ck_" + "\u0661" * 32 + "_abcdef") is None


def test_resolved_key_repr_does_not_show_the_secret(signed):
    key = signed.key
    resolved = signing_key_resolve(key.key_id)
    assert resolved is not None
    assert resolved.secrets
    secret_bytes = resolved.secrets[0]
    text = repr(resolved) + str(resolved)
    assert repr(secret_bytes) not in text
    assert "secrets=" not in text


def _deep_event(key: str, depth: int) -> bytes:
    head = (
        b'{"idempotency_key":"%s","type":"x","occurred_at":"2026-01-01T00:00:00Z","payload":{"a":'
    )
    return (head % key.encode()) + b"[" * depth + b"]" * depth + b"}}"


def test_payload_nested_near_the_parser_recursion_limit_is_never_500(client, signed):
    # json.loads and the canonical json.dumps hit Python's recursion limit at slightly different
    # depths; in between, the request used to answer 500.
    sign = signed.sign
    for depth in range(850, 1000, 3):
        body = _deep_event(f"deep-{depth}", depth)
        response = _post(client, body, sign(body))
        assert response.status_code == 400, (depth, response.content)


def test_payload_nested_beyond_the_limit_is_400_invalid_request(client, signed):
    sign = signed.sign
    ok = _deep_event("deep-ok", 63)
    assert _post(client, ok, sign(ok)).status_code == 202
    too_deep = _deep_event("deep-no", 64)
    response = _post(client, too_deep, sign(too_deep))
    _assert_error(response, 400, "invalid_request")
    assert "payload" in response.json()["error"]["message"]
