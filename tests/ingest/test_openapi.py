"""The OpenAPI description: served, valid, identical to docs/openapi.yaml, readable offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from drf_spectacular.validation import validate_schema

from tests.factories import UserFactory
from tests.helpers import staff_client

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python manage.py spectacular --validate --file docs/openapi.yaml"


def _served(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_served_schema_is_valid_openapi_3_and_matches_docs_openapi_yaml(client):
    served = _served(client)
    validate_schema(served)
    checked_in = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    assert served == checked_in, f"docs/openapi.yaml is stale: run `{REGENERATE}`"


def test_schema_describes_exactly_the_public_api_with_its_answers(client):
    schema = _served(client)
    assert set(schema["paths"]) == {
        "/v1/events",
        "/v1/events/{idempotency_key}",
        "/config",
        "/v1/sources/{source_id}/webhooks",
    }
    sources = schema["paths"]["/v1/sources/{source_id}/webhooks"]["post"]
    assert set(sources["responses"]) == {
        "200", "400", "401", "403", "404", "405", "410", "411", "413", "429", "503"
    }  # fmt: skip
    assert sources.get("security", [{}]) == [{}]  # signed with the platform's scheme instead
    events = schema["paths"]["/v1/events"]["post"]
    assert set(events["responses"]) == {
        "200", "202", "400", "401", "403", "405", "411", "413", "415", "422", "429", "503"
    }  # fmt: skip
    assert {"$ref": "#/components/schemas/Event"} in schema["components"]["schemas"][
        "EventsRequest"
    ]["oneOf"]
    config = schema["paths"]["/config"]["get"]
    assert {"200", "304", "401", "403"} <= set(config["responses"])
    lookup = schema["paths"]["/v1/events/{idempotency_key}"]["get"]
    assert {"200", "401", "404"} <= set(lookup["responses"])
    signing = {"codexKeyId", "webhookId", "webhookTimestamp", "webhookSignature"}
    assert set(schema["components"]["securitySchemes"]) == signing
    for operation in (events, config, lookup):
        assert operation["security"] == [{key: [] for key in signing}]
    scheme = schema["components"]["securitySchemes"]["webhookSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "header",
        "webhook-signature",
    )


def test_every_error_code_the_api_paths_raise_is_in_the_schemas_error_code_enum(client):
    from codex import error_codes as codes

    schema = _served(client)
    enum = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert enum == codes.api_codes()  # the registry's API codes, generated (no hand list)
    sources = [
        ROOT / p
        for p in (
            "ingest/views.py",
            "ingest/lookup_views.py",
            "tenants/auth.py",
            "ingest/validation.py",
            "ingest/webhooks/views.py",
            "ingest/webhooks/services.py",
            "ingest/webhooks/verify.py",
            "ingest/webhooks/guard.py",
            "codex/http.py",
            "codex/throttle.py",
        )
    ]
    raised = set()
    for path in sources:
        text = path.read_text()
        raised |= {
            getattr(codes, name).code for name in re.findall(r"\bcodes\.([A-Z][A-Z0-9_]+)\b", text)
        }
        raised |= set(re.findall(r'(?:ApiError|DomainError)\(\s*"([a-z_]+)"', text))
    assert {"malformed_json", "invalid_request", "missing_signature", "rate_limited"} <= raised
    missing = sorted(code for code in raised if code not in enum)
    assert not missing, f"error codes raised but not in the schema: {missing}"
    documented = yaml.safe_dump({k: v for k, v in schema["paths"].items()})
    undescribed = sorted(code for code in raised if f"`{code}`" not in documented)
    assert not undescribed, f"error codes raised but in no answer's description: {undescribed}"


def test_docs_page_renders_swagger_ui_from_our_own_static_files(client, live_server):
    import httpx

    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html.lower()
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert not external, f"the page loads from the network: {external}"
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        assert httpx.get(live_server.url + asset, timeout=10).status_code == 200, asset


def test_every_request_body_the_server_requires_is_marked_required(client):
    schema = _served(client)
    bodies = {
        f"{method.upper()} {path}": operation["requestBody"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert set(bodies) == {"POST /v1/events", "POST /v1/sources/{source_id}/webhooks"}
    assert all(body.get("required") is True for body in bodies.values()), bodies


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_schema_and_docs_answer_only_logged_in_staff_when_deployed(
    db, client, settings, environment
):
    settings.CODEX_ENV = environment
    settings.CODEX_PUBLIC_API_DOCS = False
    schema = client.get("/api/schema/")
    assert schema.status_code == 403
    assert schema.json()["error"]["code"] == "forbidden"
    assert schema.json()["error"]["rid"] == schema["X-Request-ID"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"] == "/admin/login/?next=/api/docs/"
    client.force_login(UserFactory(is_staff=False))
    assert client.get("/api/schema/").status_code == 403
    assert client.get("/api/docs/").status_code == 403  # logged in: no login loop
    staff = staff_client()
    assert staff.get("/api/schema/").status_code == 200
    assert staff.get("/api/docs/").status_code == 200


def test_a_setting_opens_schema_and_docs_in_production(client, settings):
    settings.CODEX_ENV = "production"
    settings.CODEX_PUBLIC_API_DOCS = True
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_the_schema_is_generated_once_per_process_for_repeated_requests(client, monkeypatch):
    from drf_spectacular.generators import SchemaGenerator

    from ingest import schema_views

    calls = []
    generate = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        calls.append(1)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    schema_views.schema_cached.cache_clear()
    first = client.get("/api/schema/")
    for _ in range(4):
        assert client.get("/api/schema/").content == first.content
    assert client.get("/api/schema/?format=json").json() == yaml.safe_load(first.content)
    assert len(calls) == 1
