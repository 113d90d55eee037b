"""The error registry (codex/error_codes.py): complete, documented, and the one mapping's source."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from codex import error_codes as codes
from codex.errors import (
    ApiError,
    DomainError,
    Unavailable,
    domain_error,
    domain_error_response,
    operator_message,
)

ROOT = Path(__file__).resolve().parents[2]
APPS = ("codex", "tenants", "flags", "ingest", "reconcile")
# Callables whose first positional argument is an error code.
_CODE_FIRST = {"DomainError", "DomainValueError", "ApiError", "error_response", "entry_for"}


def _app_sources() -> list[Path]:
    return [
        path
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def raised_code_literals() -> dict[str, list[str]]:
    """Every error code written as a string literal in the apps, with where it is written.

    Found: the first argument of DomainError/ApiError/error_response(...), `code=` of an error
    class (TenantError(..., code=...)), and `{"code": ...}` documents (a batch item's error).
    """
    found: dict[str, list[str]] = {}
    for path in _app_sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            literals: list[str | None] = []
            if isinstance(node, ast.Call):
                name = _name(node.func)
                if name in _CODE_FIRST and node.args:
                    literals.append(_literal(node.args[0]))
                # An error class's code= (not Django's forms.ValidationError: a form's own codes).
                if name != "ValidationError" and name.endswith(
                    ("Error", "NotFound", "Offboarded", "Rejected", "Invalid")
                ):
                    literals += [_literal(k.value) for k in node.keywords if k.arg == "code"]
            elif isinstance(node, ast.Dict):
                literals += [
                    _literal(v)
                    for k, v in zip(node.keys, node.values, strict=True)
                    if _literal(k) == "code"
                ]
            for code in filter(None, literals):
                found.setdefault(code, []).append(f"{where}:{node.lineno}")
    return found


def test_every_code_literal_raised_in_the_apps_is_a_registry_entry():
    found = raised_code_literals()
    # The scan sees what it must (old-style raise sites still exist in files not yet converted).
    assert {"invalid_event", "idempotency_key_reused"} <= set(found)
    unknown = {code: where for code, where in found.items() if code not in codes.REGISTRY}
    assert not unknown, f"error codes not in codex/error_codes.py: {unknown}"


def test_every_entry_named_in_the_apps_exists():
    named = set()
    for path in _app_sources():
        named |= set(re.findall(r"\bcodes\.([A-Z][A-Z0-9_]+)\b", path.read_text()))
    missing = sorted(n for n in named if not isinstance(getattr(codes, n, None), codes.ErrorCode))
    assert not missing, missing
    by_name = {
        n: e for n, e in vars(codes).items() if isinstance(e, codes.ErrorCode) and n.isupper()
    }
    assert {e.code for e in by_name.values()} == set(codes.REGISTRY)
    assert all(name == entry.code.upper() for name, entry in by_name.items()), by_name


def _generated_block(text: str, name: str) -> str:
    match = re.search(
        rf"<!-- error-codes:{name} [^>]*-->\n(.*?)\n<!-- /error-codes:{name} -->", text, re.S
    )
    assert match, f"docs/api.md has no generated error-codes:{name} table"
    return match.group(1)


def test_docs_api_md_error_tables_are_the_registry():
    text = (ROOT / "docs/api.md").read_text()
    regenerate = "python -m codex.error_codes (and paste its tables into docs/api.md)"
    assert _generated_block(text, "api") == codes.markdown_table(api=True), regenerate
    assert _generated_block(text, "operators") == codes.markdown_table(api=False), regenerate
    documented = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", text, re.M))
    assert documented == set(codes.REGISTRY)  # both ways: no code undocumented, none invented


def test_the_openapi_error_code_enum_is_the_registrys_api_codes():
    schema = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    enum = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert enum == codes.api_codes()
    assert set(enum) == {e.code for e in codes.REGISTRY.values() if e.api}
    detail = schema["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    assert detail == {"$ref": "#/components/schemas/ErrorCode"}
    item = schema["components"]["schemas"]["ItemErrorCodeEnum"]["enum"]
    assert set(item) <= set(enum)


def test_each_documented_answer_names_codes_of_its_own_status():
    schema = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                listed = re.search(r"Codes: (.*)\.", response.get("description", ""))
                for code in re.findall(r"`([a-z_]+)`", listed.group(1) if listed else ""):
                    entry = codes.REGISTRY[code]
                    assert entry.api, (path, method, code)
                    assert str(entry.status) == status, (path, method, status, code)


def test_an_unknown_code_or_an_undeclared_header_raises_in_development_and_tests():
    with pytest.raises(LookupError, match=r"'no_such_code' is not in codex/error_codes\.py"):
        DomainError("no_such_code", "x")
    with pytest.raises(LookupError, match="rate_limited answers 429, not 400"):
        DomainError("rate_limited", "x", status_code=400)
    with pytest.raises(LookupError, match="tenant_suspended does not carry Retry-After"):
        codes.TENANT_SUSPENDED.error(retry_after=5)
    with pytest.raises(TypeError, match="unknown header argument 'x_custom'"):
        codes.RATE_LIMITED.error(x_custom=1)


def test_a_deployed_process_logs_an_unknown_code_instead_of_failing(settings, caplog):
    settings.CODEX_ENV = "production"
    with caplog.at_level(logging.ERROR, logger="codex.error_codes"):
        error = DomainError("no_such_code", "x", status_code=409)
    assert (error.code, error.status_code, error.message) == ("no_such_code", 409, "x")
    assert "'no_such_code' is not in codex/error_codes.py" in caplog.text


def test_an_entry_gives_status_default_message_and_the_headers_the_raise_site_fills():
    error = codes.RATE_LIMITED.error("slow down", retry_after=3)
    assert (error.code, error.status_code, error.message) == ("rate_limited", 429, "slow down")
    assert dict(error.headers) == {"Retry-After": "3"}
    assert str(codes.TENANT_SUSPENDED.error()) == "This tenant is suspended."
    assert dict(Unavailable().headers) == {"Retry-After": "5"}
    legacy = DomainError("unavailable", "down", status_code=503)
    assert legacy.entry is codes.UNAVAILABLE
    assert dict(legacy.headers) == {"Retry-After": "5"}
    prebuilt = {"Allow": "POST"}
    assert codes.METHOD_NOT_ALLOWED.error(headers=prebuilt).headers is prebuilt  # no copy


def test_the_one_mapping_answers_json_with_status_headers_and_rid():
    response = domain_error_response(codes.RATE_LIMITED.error("slow down", retry_after=2))
    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    body = json.loads(response.content)["error"]
    assert (body["code"], body["message"]) == ("rate_limited", "slow down")
    assert "rid" in body


def test_api_error_is_also_a_drf_exception_for_authenticators():
    from rest_framework.exceptions import APIException

    error = ApiError(codes.UNKNOWN_KEY, headers={"WWW-Authenticate": "x"})
    assert isinstance(error, APIException)
    assert isinstance(error, DomainError)
    assert (error.code, error.status_code, str(error.detail)) == (
        "unknown_key",
        401,
        "No such signing key.",
    )


def test_an_undecryptable_secret_is_503_unavailable_to_clients_and_the_cause_to_operators():
    from tenants.crypto import SecretUndecryptable

    exc = SecretUndecryptable()
    assert "put that key back" in operator_message(exc)
    answer = domain_error(exc)
    assert (answer.code, answer.status_code) == ("unavailable", 503)
    assert answer.message == "The secret store is unavailable; retry later."
    assert dict(answer.headers) == {"Retry-After": "30"}


def test_event_invalid_escaping_to_an_edge_is_invalid_request_not_a_500():
    import ingest.errors  # noqa: F401 - registers EventInvalid
    from ingest.validation import EventInvalid

    answer = domain_error(EventInvalid("type: required"))
    assert (answer.code, answer.status_code, answer.message) == (
        "invalid_request",
        400,
        "type: required",
    )


def test_module_errors_derive_from_the_base_with_their_entry():
    from ingest.webhooks.shapes import DeliveryInvalid
    from ingest.webhooks.verify import SignatureRejected

    delivery = DeliveryInvalid("type: required")
    assert isinstance(delivery, ValueError)
    assert delivery.entry is codes.INVALID_DELIVERY
    rejected = SignatureRejected(codes.INVALID_SIGNATURE, "No match.")
    assert rejected.status_code == 401
    assert dict(rejected.headers) == {"WWW-Authenticate": 'Codex-Source-Signature realm="codex"'}


def test_a_command_shows_a_domain_error_as_its_command_error(db):
    with pytest.raises(CommandError, match="say what to replay") as caught:
        call_command("replay_dlq")
    assert isinstance(caught.value.__cause__, DomainError)
    assert caught.value.__cause__.entry is codes.INVALID_ARGUMENTS


def test_moment_parse_refuses_with_a_registry_error_that_argparse_still_reads():
    from codex.commands import moment_parse

    with pytest.raises(ValueError, match="not an ISO 8601 time") as caught:
        moment_parse("yesterday-ish")
    assert caught.value.entry is codes.INVALID_MOMENT


def test_flags_for_a_missing_tenant_is_tenant_not_found_not_invalid_flag(db):
    from flags.services import flag_update, flags_provision_tenant

    missing = "00000000-0000-0000-0000-000000000001"
    with pytest.raises(DomainError, match=f"no tenant with id {missing}") as caught:
        flag_update(tenant_id=missing, values={"retryCap": 1}, actor="t", via="cli")
    assert (caught.value.code, caught.value.status_code) == ("tenant_not_found", 404)
    with pytest.raises(DomainError, match="no tenant with id") as caught:
        flags_provision_tenant(tenant_id=missing, actor="p")
    assert caught.value.code == "tenant_not_found"


def test_tenant_suspended_has_one_wording_on_the_events_and_the_webhook_path(client, signed):
    from tenants.models import Tenant
    from tenants.scope import system_scope
    from tests.factories import WebhookSourceFactory
    from tests.helpers import api_request, encode, make_event

    source = WebhookSourceFactory(tenant=signed.tenant, kind="shopify")
    with system_scope("test"):
        Tenant.objects.filter(id=signed.tenant.id).update(status=Tenant.Status.SUSPENDED)
    events = api_request(client, signed.key, "POST", "/v1/events", encode(make_event()))
    delivery = client.post(source.path, b"{}", content_type="application/json")
    for response in (events, delivery):
        assert response.status_code == 403
        error = response.json()["error"]
        assert (error["code"], error["message"]) == (
            "tenant_suspended",
            "This tenant is suspended.",
        )
