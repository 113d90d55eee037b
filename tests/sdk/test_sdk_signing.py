"""The SDK's v2 signatures: the documented canonical request, byte for byte, one request each."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from codex_sdk import signing
from codex_sdk.events import build_event, encode_batch, encode_event
from tests.signing import verify_v2

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_is_the_documented_hmac_of_the_canonical_request() -> None:
    body = encode_batch([encode_event(build_event("door.opened", {"name": "Zoë ☃"}))])
    key = signing.decode_secret(SECRET)
    headers = signing.sign_headers("ck_1", key, body, msg_id="msg_abc", timestamp=1_700_000_000)
    # docs/api.md: v2\n{METHOD}\n{path}\n{query}\n{webhook-id}\n{webhook-timestamp}\n{body}
    content = b"v2\nPOST\n/v1/events\n\nmsg_abc\n1700000000\n" + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v2," + expected
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["X-Codex-Key-Id"] == "ck_1"


def test_a_get_signs_its_method_path_and_query() -> None:
    key = signing.decode_secret(SECRET)
    headers = signing.sign_headers(
        "ck_1", key, b"", method="GET", path="/config?x=1", msg_id="m", timestamp=1
    )
    content = b"v2\nGET\n/config\nx=1\nm\n1\n"
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v2," + expected


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("/v1/events/order-1", "/v1/events/order-1"),
        ("/v1/events/a%2Fb", "/v1/events/a/b"),  # the server sees the decoded path
        ("/v1/events/caf%C3%A9%20%7E", "/v1/events/caf%C3%A9%20~"),
        ("/v1/events/a%2fb%3a", "/v1/events/a/b%3A"),
    ],
)
def test_the_path_is_signed_as_the_server_sees_it(sent: str, canonical: str) -> None:
    content = signing.canonical_request("GET", sent, "m", 1, b"")
    assert content == f"v2\nGET\n{canonical}\n\nm\n1\n".encode()


def test_fresh_headers_verify_for_their_own_request_only() -> None:
    body = b'{"events":[]}'
    headers = signing.sign_headers("ck_1", signing.decode_secret(SECRET), body)
    assert headers["webhook-id"].startswith("msg_")
    assert verify_v2(SECRET, "POST", "/v1/events", headers, body)
    assert not verify_v2(SECRET, "GET", "/v1/events", headers, body)
    assert not verify_v2(SECRET, "POST", "/config", headers, body)
    assert not verify_v2(SECRET, "POST", "/v1/events?x=1", headers, body)
    assert not verify_v2(SECRET, "POST", "/v1/events", headers, body + b" ")
    lookup = signing.sign_headers(
        "ck_1", signing.decode_secret(SECRET), b"", method="GET", path="/v1/events/k%2F1"
    )
    assert verify_v2(SECRET, "GET", "/v1/events/k%2F1", lookup, b"")
    assert not verify_v2(SECRET, "GET", "/v1/events/k%2F2", lookup, b"")


def test_message_ids_are_unique() -> None:
    key = signing.decode_secret(SECRET)
    ids = {signing.sign_headers("ck", key, b"")["webhook-id"] for _ in range(200)}
    assert len(ids) == 200


def test_wrong_secret_is_rejected() -> None:
    body = b'{"events":[]}'
    headers = signing.sign_headers("ck_1", signing.decode_secret(SECRET), body)
    other = "whsec_" + base64.b64encode(b"another key entirely").decode()
    assert not verify_v2(other, "POST", "/v1/events", headers, body)


def test_unpadded_and_bare_secrets_decode_like_the_library() -> None:
    raw = b"sixteen byte key"
    padded = base64.b64encode(raw).decode()  # 16 bytes -> ends with "=="
    unpadded = padded.rstrip("=")
    assert padded != unpadded
    assert signing.decode_secret("whsec_" + unpadded) == raw
    assert signing.decode_secret(padded) == raw
    body = b"{}"
    headers = signing.sign_headers("ck", signing.decode_secret("whsec_" + unpadded), body)
    assert verify_v2("whsec_" + unpadded, "POST", "/v1/events", headers, body)


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_!!!!"])
def test_unusable_secrets(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        signing.decode_secret(bad)
