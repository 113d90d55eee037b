"""schemathesis fuzzes the live server (gunicorn) against its own OpenAPI description.

Two passes over every operation of /api/schema/, positive and negative generation: one whose
requests are all signed with a valid key (a requests auth hook signs the prepared request: the v2
HMAC covers its method, path, query and exact body bytes), and one with the signing headers off.
Every response passes schemathesis's default checks, positive data acceptance and negative
data rejection included (no 5xx; status code, content type, body and headers as described;
valid data accepted, invalid data refused; a signed 2xx refused once its signature is taken off).
The seed and the counts are printed (`pytest -s` shows them; CI logs keep them).

What the fuzzer is told beyond the served description, each a fact the description cannot say:
the signing headers come from the signer (never generated); no NUL in any string (PostgreSQL
cannot store one, docs/api.md; OpenAPI 3.0 cannot forbid it in a payload's keys); a positive
single event gets an idempotency key of its own (the same key with other content is the
documented 422 conflict: the ledger's state, not the data); and a delivery to the test's Standard
Webhooks source follows that kind's contract (a string `type`), where the served description
admits any object because the source's kind decides.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from flags.services import flag_update
from tests.dbutil import database_url
from tests.factories import SigningKeyFactory, TenantFactory, WebhookSourceFactory
from tests.procs import gunicorn_server
from tests.signing import sign_headers

pytestmark = pytest.mark.slow

SIGNING_HEADERS = ("X-Codex-Key-Id", "webhook-id", "webhook-timestamp", "webhook-signature")
# 4 operations x 2 generation modes (GET /config has no negative input) x this many examples x
# 2 passes (signed, unsigned).
EXAMPLES_PER_OPERATION_AND_MODE = 80
SOURCE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MIN_REQUESTS = 1000
SOURCES_OPERATION = "POST /v1/sources/{source_id}/webhooks"
# A Standard Webhooks source's contract (ingest/webhooks/shapes.standard_event): a JSON object
# whose `type` (the source's type field) is an event type.
STANDARD_DELIVERY = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string", "pattern": "^[a-z0-9_.:-]{1,100}$"}},
    "additionalProperties": True,
}


class Sign(requests.auth.AuthBase):
    """Sign the prepared request (its final body bytes) with a key or source secret, or strip it.

    key_id None: a webhook source's delivery (Standard Webhooks headers, no X-Codex-Key-Id).
    """

    def __init__(self, key_id: str | None = None, secret: str | None = None):
        self.key_id, self.secret = key_id, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in SIGNING_HEADERS:
            request.headers.pop(name, None)  # whatever the generator put there
        if self.secret is not None:
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode("utf-8")
            if self.key_id is None:  # Standard Webhooks: v1 over the body
                headers = sign_headers("", self.secret, body, version="v1")
                del headers["X-Codex-Key-Id"]
            else:  # v2: this request's method, path and query too
                url = urlsplit(request.url or "")
                target = url.path + (f"?{url.query}" if url.query else "")
                headers = sign_headers(
                    self.key_id, self.secret, body, method=request.method or "", path=target
                )
            request.headers.update(headers)
        return request


def _run_operation(operation, mode, *, url, session, auths, run_seed, examples, tally, path=None):
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path)

    @seed(run_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case):
        if mode == GenerationMode.POSITIVE:
            _own_key(case, tally)
        # Each generated request goes out once per pass: signed, then with no signature.
        for name, auth in auths.items():
            response = case.call(base_url=url, session=session, auth=auth, timeout=10)
            tally["requests"] += 1
            tally["passes"][name][response.status_code] += 1
            transport = {"base_url": url, "session": session, "auth": auth, "timeout": 10}
            try:
                case.validate_response(response, transport_kwargs=transport)  # default checks
            except FailureGroup as exc:
                for failure in exc.exceptions:
                    tally["violations"].append(
                        f"{operation.label} [{mode.value}, {name}] {response.status_code}: "
                        f"{failure.title} {response.text[:200]!r} <- {case.as_curl_command()[:400]}"
                    )

    try:
        fuzz()
    except Unsatisfiable:
        # Nothing to violate: no parameter or body but free-text headers (auth is the signer's).
        assert mode == GenerationMode.NEGATIVE, operation.label
        tally["no_negative_input"].append(operation.label)


def _own_key(case, tally) -> None:
    """A generated single event gets an idempotency key of its own (still schema-valid)."""
    body = case.body
    if case.operation.label == "POST /v1/events" and isinstance(body, dict):
        key = body.get("idempotency_key")
        if isinstance(key, str):
            tally["keys"] += 1
            body["idempotency_key"] = f"{key[:240]}~{tally['keys']}"


def _described(url: str):
    """The served description, with the Standard source's delivery contract (module docstring)."""
    raw = requests.get(f"{url}/api/schema/?format=json", timeout=30).json()
    body = raw["paths"]["/v1/sources/{source_id}/webhooks"]["post"]["requestBody"]
    body["content"]["application/json"]["schema"] = STANDARD_DELIVERY
    schema = schemathesis.openapi.from_dict(raw)
    schema.config.generation.update(with_security_parameters=False, allow_x00=False)
    return schema


def test_schemathesis_signed_and_unsigned_passes_find_no_5xx_and_no_schema_violation(
    transactional_db,
):
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    # 429 is documented, but a throttled fuzzer tests little: keep the limit out of reach.
    flag_update(
        tenant_id=tenant.id,
        values={
            "ingestRatePerSec": 100_000,
            "sourceRatePerSec": 100_000,
            "lookupRatePerSec": 100_000,
            "configRatePerSec": 100_000,
        },
        actor="test-schemathesis",
        via="cli",
        reason="fuzzing must not be throttled",
    )
    source = WebhookSourceFactory(
        tenant=tenant, kind="standard", secret=SOURCE_SECRET, actor="test"
    )
    run_seed = int(os.environ.get("SCHEMATHESIS_SEED") or random.SystemRandom().randrange(2**32))
    tally = {
        "requests": 0,
        "keys": 0,
        "passes": {"signed": Counter(), "unsigned": Counter()},
        "violations": [],
        "no_negative_input": [],
    }
    started = time.monotonic()
    # The unsigned pass is a flood of unverified deliveries from one address: out of reach too.
    unverified = {
        "CODEX_SOURCE_UNVERIFIED_PER_SEC": "100000",
        "CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC": "100000",
    }
    with gunicorn_server({"DATABASE_URL": database_url(), **unverified}, workers=2) as (url, _proc):
        schema = _described(url)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} == {
            "POST /v1/events",
            "GET /v1/events/{idempotency_key}",
            "GET /config",
            "POST /v1/sources/{source_id}/webhooks",
        }
        with requests.Session() as session:
            for operation in operations:
                if operation.label == SOURCES_OPERATION:
                    # Deliveries to the tenant's real source, signed with its own secret.
                    signer, path = Sign(None, SOURCE_SECRET), {"source_id": source.source_id}
                else:
                    signer, path = Sign(key.key_id, key.secret), None
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _run_operation(
                        operation,
                        mode,
                        url=url,
                        session=session,
                        auths={"signed": signer, "unsigned": Sign()},
                        run_seed=run_seed,
                        examples=EXAMPLES_PER_OPERATION_AND_MODE,
                        tally=tally,
                        path=path,
                    )
    took = time.monotonic() - started
    passes = tally["passes"]
    histogram = dict(sorted((passes["signed"] + passes["unsigned"]).items()))
    print(
        f"\nschemathesis seed={run_seed} requests={tally['requests']} in {took:.1f} s; "
        f"status histogram {histogram}; "
        + "; ".join(f"{name}: {dict(sorted(c.items()))}" for name, c in passes.items())
        + f"; 5xx={sum(n for s, n in histogram.items() if s >= 500)}"
        f"; check failures={len(tally['violations'])}"
        f"; no negative input: {tally['no_negative_input']}"
        f" (rerun with SCHEMATHESIS_SEED={run_seed})"
    )
    assert not tally["violations"], "\n".join(tally["violations"][:20])
    assert set(tally["no_negative_input"]) <= {"GET /config"}
    assert not [s for s in histogram if s >= 500]
    assert tally["requests"] >= MIN_REQUESTS
    # The signed pass reached the server's logic (not only its door), the unsigned one never did.
    assert passes["signed"][202] > 0
    assert passes["signed"][400] > 0
    # (404: a key like "." makes a URL that names no endpoint; the router answers before auth.
    # 400: a header value gunicorn refuses as invalid HTTP, before the application.)
    assert set(passes["unsigned"]) <= {400, 401, 404}
    assert passes["unsigned"][401] > 0.9 * sum(passes["unsigned"].values())
