"""Benchmark: the signed ingest path against a bare Django endpoint, measured in the same run.

    python scripts/bench_ingest.py [--requests 300] [--rounds 5] [--batch 1]

Runs in-process through Django's test client (no network, no load generator), against the
configured database and Redis (the embedded ones by default), for a dedicated `bench` tenant
whose rate limit is lifted. Rounds alternate ingest and baseline so machine noise hits both;
prints per-request wall and CPU medians, their ratio, and SQL statements per request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # measure the work, not the terminal


def _setup_tenant():
    from flags.services import flag_update
    from tenants.services import signing_key_create, tenant_get, tenant_provision

    result = tenant_provision(slug="bench", name="Benchmark tenant", actor="bench")
    tenant = tenant_get(slug="bench")
    flag_update(
        tenant_id=result.tenant_id,
        values={"ingestRatePerSec": 100000},
        actor="bench",
        via="cli",
        reason="benchmark: no rate limit",
    )
    return signing_key_create(tenant=tenant)


def _round(fn, n: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per round and path")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1, help="events per ingest request")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.signing import django_headers, sign_headers

    key = _setup_tenant()
    client = Client()

    def ingest() -> None:
        events = [
            {
                "idempotency_key": f"bench-{uuid.uuid4().hex}",
                "type": "sale.completed",
                "occurred_at": "2026-11-26T10:00:00Z",
                "payload": {"amount": "12.50", "currency": "EUR"},
            }
            for _ in range(args.batch)
        ]
        body = json.dumps(events[0] if args.batch == 1 else {"events": events}).encode()
        headers = django_headers(sign_headers(key.key_id, key.secret, body))
        response = client.post("/v1/events", body, content_type="application/json", **headers)
        if response.status_code not in (200, 202):
            raise SystemExit(f"ingest answered {response.status_code}: {response.content!r}")

    def baseline() -> None:
        if client.get("/healthz").status_code != 200:
            raise SystemExit("/healthz failed")

    for _ in range(30):  # warm connections, caches and imports
        ingest()
        baseline()
    with CaptureQueriesContext(connection) as queries:
        ingest()
    statements = len(queries.captured_queries)  # read now: the next request resets the log
    rows = []
    for _ in range(args.rounds):
        rows.append((_round(ingest, args.requests), _round(baseline, args.requests)))
    ingest_wall = statistics.median(r[0][0] for r in rows)
    ingest_cpu = statistics.median(r[0][1] for r in rows)
    base_wall = statistics.median(r[1][0] for r in rows)
    base_cpu = statistics.median(r[1][1] for r in rows)
    print(f"rounds={args.rounds} requests/round={args.requests} events/request={args.batch}")
    print(f"{'path':<28}{'wall ms/req':>12}{'cpu ms/req':>12}")
    print(f"{'POST /v1/events (signed)':<28}{ingest_wall:>12.2f}{ingest_cpu:>12.2f}")
    print(f"{'GET /healthz (baseline)':<28}{base_wall:>12.2f}{base_cpu:>12.2f}")
    print(
        f"ingest/baseline: wall x{ingest_wall / base_wall:.1f}, cpu x{ingest_cpu / base_cpu:.1f}; "
        f"ingest per event: {ingest_wall / args.batch:.2f} ms wall; "
        f"SQL statements per ingest request: {statements}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
