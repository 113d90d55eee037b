"""The benchmark's baselines: a bare Django 204 endpoint and a minimal ingest view (one file).

    BENCH_DATABASE_URL=postgresql://... gunicorn scripts.bench.minimal_app:application

`/bare` answers 204 and does nothing else. `/minimal` is the floor for durable ingest on this
stack: verify the v2 HMAC (method, path, body), parse the JSON, one INSERT .. ON CONFLICT DO NOTHING
RETURNING for the event (or the batch), commit, answer. No tenants, no RLS, no flags, no metrics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from urllib.parse import urlsplit

from django.conf import settings

_url = urlsplit(os.environ["BENCH_DATABASE_URL"])
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "",
            "PASSWORD": _url.password or "",
            "HOST": dict(p.split("=", 1) for p in _url.query.split("&") if "=" in p).get(
                "host", _url.hostname or ""
            ),
            "PORT": str(_url.port or ""),
            "CONN_MAX_AGE": 60,
        }
    },
)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

SECRET = base64.b64decode(os.environ["BENCH_SECRET"].removeprefix("whsec_"))
TENANT = uuid.UUID(os.environ.get("BENCH_TENANT", "00000000-0000-0000-0000-000000000001"))
TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_minimal (
    tenant_id uuid NOT NULL, idempotency_key text NOT NULL, type text NOT NULL,
    occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL DEFAULT now(),
    payload jsonb NOT NULL, PRIMARY KEY (tenant_id, idempotency_key))
"""
# The rows as one JSON document (jsonb_to_recordset), the shape the service's write has too.
INSERT_SQL = """
INSERT INTO bench_minimal (tenant_id, idempotency_key, type, occurred_at, payload)
SELECT %s, u.idempotency_key, u.type, u.occurred_at, coalesce(u.payload, '{}'::jsonb)
FROM jsonb_to_recordset(%s::jsonb)
    AS u(idempotency_key text, type text, occurred_at timestamptz, payload jsonb)
ON CONFLICT DO NOTHING RETURNING idempotency_key
"""


def bare(request):
    """204, nothing else: what Django itself costs."""
    return HttpResponse(status=204)


@csrf_exempt
def minimal(request):
    """Verify, parse, one INSERT .. ON CONFLICT DO NOTHING RETURNING, commit (autocommit)."""
    body = request.body
    meta = request.META
    head = f"v2\nPOST\n{request.path_info}\n\n{meta['HTTP_WEBHOOK_ID']}\n"
    signed = f"{head}{meta['HTTP_WEBHOOK_TIMESTAMP']}\n".encode() + body  # v2, as the service
    expected = base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    given = meta.get("HTTP_WEBHOOK_SIGNATURE", "").partition(",")[2]
    if not hmac.compare_digest(expected, given):
        return JsonResponse({"error": "invalid_signature"}, status=401)
    doc = json.loads(body)
    events = doc.get("events", [doc])
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [TENANT, json.dumps(events)])
        new = len(cursor.fetchall())
    if "events" in doc:
        return JsonResponse({"accepted": new, "duplicates": len(events) - new})
    return JsonResponse({"status": "accepted" if new else "duplicate"}, status=202 if new else 200)


def create_table(grant_to: str | None = None) -> None:
    """Create the baseline's own table (idempotent); `grant_to` (a role, if it exists) may write it.

    The grant is for the PgBouncer rows, where the view logs in as the service's app role.
    """
    with connection.cursor() as cursor:
        cursor.execute(TABLE_SQL)
        if grant_to:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [grant_to])
            if cursor.fetchone():
                cursor.execute(f'GRANT SELECT, INSERT ON bench_minimal TO "{grant_to}"')


urlpatterns = [path("bare", bare), path("minimal", minimal)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
