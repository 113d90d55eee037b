"""GET /config: values and JSON types, caching headers, ETag/304, cache invalidation, isolation."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from prometheus_client import REGISTRY

from flags.models import TenantFlag
from flags.selectors import effective_flags
from flags.services import flag_update
from tenants.scope import tenant_scope
from tests.factories import SigningKeyFactory, TenantFactory, TenantFlagFactory
from tests.helpers import api_request
from tests.signing import django_headers, sign_headers

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
    }
}


def test_config_defaults_have_exactly_the_contract_keys_and_json_types(signed, get_config):
    key = signed.key
    response = get_config(key)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body == {"syncEnabled": True, "minIntervalSec": 900, "retryCap": 3}
    assert list(body) == ["syncEnabled", "minIntervalSec", "retryCap"]
    raw = response.content.decode()
    assert '"syncEnabled":true' in raw.replace(" ", "")
    assert type(body["minIntervalSec"]) is int
    assert type(body["retryCap"]) is int


def test_config_sends_private_cache_control_and_a_strong_etag(signed, get_config):
    key = signed.key
    response = get_config(key)
    assert response["Cache-Control"] == "private, max-age=30"
    etag = response["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")
    assert get_config(key)["ETag"] == etag  # stable for the same values


def test_config_answers_304_on_matching_if_none_match(signed, get_config):
    key = signed.key
    etag = get_config(key)["ETag"]
    response = get_config(key, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"] == "private, max-age=30"
    assert get_config(key, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert get_config(key, HTTP_IF_NONE_MATCH='"stale"').status_code == 200


def test_config_change_is_visible_at_once_with_a_new_etag(signed, get_config, commit_hooks):
    tenant = signed.tenant
    key = signed.key
    before = get_config(key)
    commit_hooks(
        flag_update,
        tenant_id=tenant.id,
        values={"syncEnabled": False, "minIntervalSec": 60},
        actor="test",
        via="api",
    )
    after = get_config(key, HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after.json() == {"syncEnabled": False, "minIntervalSec": 60, "retryCap": 3}
    assert after["ETag"] != before["ETag"]


def test_global_change_reaches_every_tenant_and_tenant_override_wins(db, get_config, commit_hooks):
    a, b = TenantFactory(), TenantFactory()
    key_a, key_b = SigningKeyFactory(tenant=a), SigningKeyFactory(tenant=b)
    get_config(key_a), get_config(key_b)  # warm both caches
    commit_hooks(flag_update, tenant_id=None, values={"retryCap": 7}, actor="test", via="api")
    commit_hooks(flag_update, tenant_id=b.id, values={"retryCap": 1}, actor="test", via="api")
    assert get_config(key_a).json()["retryCap"] == 7
    assert get_config(key_b).json()["retryCap"] == 1


def test_other_tenants_override_never_shows_in_my_config(db, get_config, commit_hooks):
    a, b = TenantFactory(), TenantFactory()
    key_a, key_b = SigningKeyFactory(tenant=a), SigningKeyFactory(tenant=b)
    commit_hooks(
        flag_update,
        tenant_id=b.id,
        values={"syncEnabled": False, "minIntervalSec": 5, "retryCap": 0},
        actor="test",
        via="api",
    )
    assert get_config(key_a).json() == {"syncEnabled": True, "minIntervalSec": 900, "retryCap": 3}
    assert get_config(key_b).json() == {"syncEnabled": False, "minIntervalSec": 5, "retryCap": 0}
    # And under RLS, A's scope cannot even see B's rows.
    with tenant_scope(a.id):
        assert not TenantFlag.objects.filter(tenant_id=b.id).exists()
        assert TenantFlag.objects.count() == 0


def test_config_is_served_from_the_redis_cache_between_changes(signed, get_config):
    tenant = signed.tenant
    key = signed.key
    assert get_config(key).json()["retryCap"] == 3
    # A write behind the service's back (no invalidation) is not seen until the entry expires.
    TenantFlagFactory(tenant=tenant, key="retryCap", value=9)
    assert get_config(key).json()["retryCap"] == 3
    from django.core.cache import cache

    from flags.selectors import tenant_cache_key

    assert cache.get(tenant_cache_key(tenant.id)) == {}


def test_config_requires_a_signature(client, signed):
    response = client.get("/config")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_signature"
    assert response.json()["error"]["rid"]


def test_config_rejects_a_bad_signature_and_an_unknown_key(client, signed):
    key = signed.key
    headers = sign_headers(key.key_id, key.secret, b"")
    headers["webhook-signature"] = "v1,AAAA"
    response = client.get("/config", **django_headers(headers))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    other = sign_headers("ck_nope", key.secret, b"")
    assert client.get("/config", **django_headers(other)).status_code == 401


def test_config_rejects_post(client, signed):
    sign = signed.sign
    response = client.post(
        "/config",
        data=b"{}",
        content_type="application/json",
        **django_headers(sign(b"{}", path="/config")),
    )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_config_reads_are_counted_by_tenant_and_outcome(signed, get_config):
    tenant = signed.tenant
    key = signed.key

    def count(outcome):
        labels = {"tenant": tenant.slug, "outcome": outcome}
        return REGISTRY.get_sample_value("codex_config_reads_total", labels) or 0

    ok, not_modified = count("ok"), count("not_modified")
    etag = get_config(key)["ETag"]
    get_config(key, HTTP_IF_NONE_MATCH=etag)
    assert count("ok") == ok + 1
    assert count("not_modified") == not_modified + 1


def test_effective_flags_reads_postgres_when_redis_is_down(signed, get_config, commit_hooks):
    tenant = signed.tenant
    key = signed.key
    commit_hooks(flag_update, tenant_id=tenant.id, values={"retryCap": 5}, actor="t", via="api")
    before = REGISTRY.get_sample_value("codex_flags_read_fallbacks_total", {"source": "db"}) or 0
    with override_settings(CACHES=DEAD_REDIS):
        assert effective_flags(tenant_id=tenant.id)["retryCap"] == 5
        response = get_config(key)
    assert response.status_code == 200
    assert response.json()["retryCap"] == 5
    after = REGISTRY.get_sample_value("codex_flags_read_fallbacks_total", {"source": "db"})
    assert after >= before + 2


def test_flag_change_succeeds_while_redis_is_down(signed):
    tenant = signed.tenant
    with override_settings(CACHES=DEAD_REDIS):
        changes = flag_update(
            tenant_id=tenant.id, values={"syncEnabled": False}, actor="t", via="cli"
        )
    assert [c.key for c in changes] == ["syncEnabled"]


def test_effective_flags_answers_defaults_when_postgres_fails_too(signed):
    tenant = signed.tenant

    def refuse(execute, sql, params, many, context):
        raise OperationalError("database is down (injected)")

    with override_settings(CACHES=DEAD_REDIS), connection.execute_wrapper(refuse):
        values = effective_flags(tenant_id=tenant.id)
    assert values == {
        "syncEnabled": True,
        "minIntervalSec": 900,
        "retryCap": 3,
        "allowedOrigins": [],
        "ingestRatePerSec": 50,
        "sourceRatePerSec": 25,
        "lookupRatePerSec": 20,
        "configRatePerSec": 10,
        "retentionDays": 400,
        "reconcileAutoRepair": False,
        "signatureV1Allowed": True,
    }


def test_non_sdk_event_posts_are_not_counted_as_sync_batches(client, signed):
    tenant = signed.tenant
    labels = {"tenant": tenant.slug, "outcome": "success"}
    before = REGISTRY.get_sample_value("codex_sync_batches_total", labels)
    body = b'{"idempotency_key":"k1","type":"t","occurred_at":"2026-01-01T00:00:00Z"}'
    response = api_request(client, signed.key, "POST", "/v1/events", body)
    assert response.status_code == 202
    assert REGISTRY.get_sample_value("codex_sync_batches_total", labels) == before


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (202, {"status": "accepted"}, "success"),
        (200, {"accepted": 2, "duplicates": 1, "conflicts": 0, "rejected": 0}, "success"),
        (200, {"accepted": 2, "duplicates": 0, "conflicts": 0, "rejected": 1}, "rejected"),
        (200, {"accepted": 0, "duplicates": 0, "conflicts": 1, "rejected": 0}, "rejected"),
        (400, None, "rejected"),
        (401, None, "rejected"),
        (429, None, "error"),
        (503, None, "error"),
    ],
)
def test_sync_batch_outcome_classification(status, body, outcome):
    from ingest.metrics import sync_batch_outcome

    assert sync_batch_outcome(status, body) == outcome


def test_a_config_flood_of_one_key_gets_429_with_retry_after_and_the_rid(signed, db, get_config):
    tenant, key = signed.tenant, signed.key
    flag_update(tenant_id=tenant.id, values={"configRatePerSec": 2}, actor="t", via="cli")
    labels = {"tenant": tenant.slug, "outcome": "rate_limited"}
    before = REGISTRY.get_sample_value("codex_config_reads_total", labels) or 0
    answers = [get_config(key) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(429) >= 8 - 2 * 2  # at most two one-second windows of 2
    limited = next(a for a in answers if a.status_code == 429)
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["rid"] == limited["X-Request-ID"]
    assert limited["Retry-After"] == "1"
    assert REGISTRY.get_sample_value("codex_config_reads_total", labels) == before + statuses.count(
        429
    )
    assert get_config(SigningKeyFactory(tenant=tenant)).status_code == 200  # per key
