"""The error registry (codex/error_codes.py): complete, documented, and the one mapping's source."""

from __future__ import annotations

import ast
import json
import logging
import re
import uuid
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
_CODE_FIRST = {
    "DomainError",
    "DomainValueError",
    "ApiError",
    "error_response",
    "error_body",
    "entry_for",
}
# Calls that build an error: an error class, or an entry's `.error(...)`.
_ERROR_CLASS_SUFFIXES = ("Error", "NotFound", "Offboarded", "Rejected", "Invalid", "Unavailable")
# The error model itself: the only modules that may pass a status on (the legacy string form).
_ERROR_MODEL = {"codex/error_codes.py", "codex/errors.py", "tenants/errors.py"}


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


def _is_error_call(name: str) -> bool:
    # Not Django's forms.ValidationError: a form's own codes are not ours. `__init__`: an error
    # class's super().__init__(..., code=...).
    return (
        name in _CODE_FIRST
        or name in ("error", "__init__")
        or (name != "ValidationError" and name.endswith(_ERROR_CLASS_SUFFIXES))
    )


def _is_service(where: str) -> bool:
    parts = Path(where).parts
    return "services" in parts or parts[-1] in ("services.py", "selectors.py")


def error_site_problems(source: str, where: str) -> list[str]:
    """Raise sites of one module that do not go by a registry entry, as 'where:line: problem'.

    - a free-string code: the first argument of DomainError/ApiError/error_response(...), the
      `code=` of an error class (TenantError(..., code="...")) or a `{"code": "..."}` document
      (a batch item's error): name the entry instead (`codes.X`, `codes.X.code`);
    - `status_code=` given to anything outside the error model: the entry has the status;
    - `headers=` given to an error in a service or selector: the edge, not the service, answers
      HTTP (a service passes header values by keyword, `retry_after=...`, if its entry has them).
    """
    problems: list[str] = []
    service = _is_service(where)
    for node in ast.walk(ast.parse(source, filename=where)):
        literals: list[str | None] = []
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in _CODE_FIRST and node.args:
                literals.append(_literal(node.args[0]))
            if name == "error_response" and len(node.args) > 2 and where not in _ERROR_MODEL:
                problems.append(f"{where}:{node.lineno}: a status (the entry has it)")
            if _is_error_call(name):
                literals += [_literal(k.value) for k in node.keywords if k.arg == "code"]
            for keyword in node.keywords:
                if keyword.arg == "status_code" and where not in _ERROR_MODEL:
                    problems.append(f"{where}:{node.lineno}: status_code= (the entry has it)")
                if keyword.arg == "headers" and service and _is_error_call(name):
                    problems.append(f"{where}:{node.lineno}: headers= on an error in a service")
        elif isinstance(node, ast.Dict):
            literals += [
                _literal(v)
                for k, v in zip(node.keys, node.values, strict=True)
                if _literal(k) == "code"
            ]
        problems += [
            f"{where}:{node.lineno}: free-string code {code!r}" for code in filter(None, literals)
        ]
    return problems


def test_the_scan_finds_every_kind_of_free_string_code_and_http_detail():
    sample = """
raise DomainError("tenant_error", "x", status_code=400)
raise TenantNotFound("x", code="device_not_found")
super().__init__(message, code="prometheus_unavailable")
raise codes.RATE_LIMITED.error("x", headers={"Retry-After": "1"})
error = {"code": "invalid_event", "message": "x"}
return error_response("forbidden", "x", 403)
raise forms.ValidationError("x", code="invalid_choice")
raise codes.TENANT_ERROR.error("x")
error = {"code": codes.INVALID_EVENT.code}
"""
    in_service = [p.split(": ", 1)[1] for p in error_site_problems(sample, "tenants/services/x.py")]
    assert in_service == [
        "status_code= (the entry has it)",
        "free-string code 'tenant_error'",
        "free-string code 'device_not_found'",
        "free-string code 'prometheus_unavailable'",
        "headers= on an error in a service",
        "free-string code 'invalid_event'",
        "a status (the entry has it)",
        "free-string code 'forbidden'",
    ]
    at_an_edge = [p.split(": ", 1)[1] for p in error_site_problems(sample, "ingest/views.py")]
    assert at_an_edge == [p for p in in_service if "headers=" not in p]  # an edge may pass
    assert not error_site_problems("DomainError(c, m, status_code=s)", "codex/errors.py")


def test_every_raise_site_in_the_apps_goes_by_a_registry_entry():
    problems = [
        problem
        for path in _app_sources()
        for problem in error_site_problems(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not problems, "raise by entry (codex/error_codes.py):\n" + "\n".join(problems)


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


def test_event_invalid_is_an_invalid_request_domain_error_not_a_500():
    from ingest.validation import EventInvalid

    exc = EventInvalid("type: required")
    assert isinstance(exc, ValueError)
    assert exc.entry is codes.INVALID_REQUEST
    assert str(exc) == operator_message(exc) == "type: required"
    answer = domain_error(exc)
    assert (answer.code, answer.status_code, answer.message) == (
        "invalid_request",
        400,
        "type: required",
    )
    assert dict(answer.headers) == {}


def test_an_erasure_of_a_malformed_subject_is_invalid_subject():
    from ingest.services.erasure import events_erase

    for subject in ("", "x" * 256):
        with pytest.raises(DomainError, match="subject id: 1 to 255 characters") as caught:
            events_erase(tenant_id=uuid.uuid4(), subject_id=subject, actor="t")
        assert caught.value.entry is codes.INVALID_SUBJECT


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
