#!/usr/bin/env python3
"""Dedup load test: `total` signed single-event POSTs over `unique` idempotency keys.

    python scripts/dedup_loadtest.py --url URL --source demo --tenant t1 \
        --total 1000 --unique 200 --concurrency 50 --out result.json

Credentials: --key-id/--secret, or CODEX_KEY_ID/CODEX_SECRET. Every run uses fresh keys
(`<tenant>-<run id>-<n>`), so a run expects exactly `unique` accepted and `total - unique`
duplicates. Request n carries key n % unique with that key's fixed content.

A 429 is the server protecting the tenant, not an answer: the client waits Retry-After (plus
jitter), signs again and resends, up to --max-retries times; those resends are reported as
`rate_limited_retries`. The recorded latency of a request is that of the attempt that got its
answer, so throttling shows in throughput, never as server latency. (See docs/api.md, "Load-test
gate".) Check the result with scripts/check_loadtest_result.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import aiohttp


def signed_headers(key_id: str, secret: bytes, body: bytes) -> dict[str, str]:
    """Signing headers (v2, docs/api.md) for one POST /v1/events body, with a new webhook-id.

    Call it for every attempt: the server accepts each webhook-id once.
    """
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = str(int(time.time()))
    content = f"v2\nPOST\n/v1/events\n\n{msg_id}\n{ts}\n".encode() + body
    mac = hmac.new(secret, content, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Codex-Key-Id": key_id,
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v2," + base64.b64encode(mac).decode(),
    }


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a whsec_<base64> secret."""
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


async def run(args: argparse.Namespace) -> dict:
    """Send the requests and return the result document."""
    secret = decode_secret(args.secret)
    run_id = args.run_id or uuid.uuid4().hex[:10]
    occurred_at = datetime.now(tz=UTC).replace(microsecond=0).isoformat()
    endpoint = args.url.rstrip("/") + "/v1/events"
    bodies = [
        json.dumps(
            {
                "idempotency_key": f"{args.tenant}-{run_id}-{n}",
                "type": "loadtest.sale",
                "occurred_at": occurred_at,
                "source": args.source,
                "payload": {"amount_minor": 100 + n, "currency": "EUR", "n": n},
            },
            separators=(",", ":"),
        ).encode()
        for n in range(args.unique)
    ]
    statuses: Counter[str] = Counter()
    transport_errors: Counter[str] = Counter()
    latencies: list[float] = []
    retries = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.total):
        queue.put_nowait(i)

    # aiohttp (C-accelerated HTTP parsing): the generator must cost far less CPU than the server
    # it measures, since both share the same machine in CI.
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def one(i: int) -> None:
            nonlocal retries
            body = bodies[i % args.unique]
            for attempt in range(args.max_retries + 1):
                started = time.perf_counter()
                headers = signed_headers(args.key_id, secret, body)
                try:
                    async with client.post(endpoint, data=body, headers=headers) as response:
                        await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    transport_errors[type(exc).__name__] += 1
                    return
                elapsed = time.perf_counter() - started
                if response.status == 429 and attempt < args.max_retries:
                    retries += 1
                    wait = float(response.headers.get("Retry-After") or 1)
                    await asyncio.sleep(wait * random.uniform(0.5, 1.0))
                    continue
                latencies.append(elapsed)
                statuses[str(response.status)] += 1
                return

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one(i)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        duration = time.perf_counter() - started

    latencies.sort()
    answered = sum(statuses.values())
    return {
        "url": args.url,
        "tenant": args.tenant,
        "source": args.source,
        "run_id": run_id,
        "total": args.total,
        "unique": args.unique,
        "concurrency": args.concurrency,
        "answered": answered,
        "by_status": dict(sorted(statuses.items())),
        "accepted": statuses["202"],
        "duplicates": statuses["200"],
        "server_errors": sum(n for s, n in statuses.items() if s.startswith("5")),
        "transport_errors": sum(transport_errors.values()),
        "transport_error_types": dict(transport_errors),
        "rate_limited_retries": retries,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 2),
            "p95": round(percentile(latencies, 95) * 1000, 2),
            "p99": round(percentile(latencies, 99) * 1000, 2),
            "max": round((latencies[-1] if latencies else 0) * 1000, 2),
        },
        "duration_s": round(duration, 3),
        "throughput_rps": round(answered / duration, 1) if duration else 0.0,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (the guide's, plus credentials and tuning)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--source", default="loadtest", help="event source")
    p.add_argument("--tenant", default="t1", help="label, used as the idempotency-key prefix")
    p.add_argument("--total", type=int, default=1000)
    p.add_argument("--unique", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--out", default="result.json")
    p.add_argument("--key-id", default=os.environ.get("CODEX_KEY_ID"))
    p.add_argument("--secret", default=os.environ.get("CODEX_SECRET"))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP attempt")
    p.add_argument("--max-retries", type=int, default=50, help="resends after 429 per request")
    p.add_argument("--run-id", default=None, help="fixed run id (default: random)")
    args = p.parse_args(argv)
    if not args.key_id or not args.secret:
        p.error("credentials: --key-id/--secret or CODEX_KEY_ID/CODEX_SECRET")
    if not 1 <= args.unique <= args.total:
        p.error("need 1 <= --unique <= --total")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, write --out, print a one-line summary."""
    args = parse_args(argv)
    result = asyncio.run(run(args))
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    lat = result["latency_ms"]
    print(
        f"answered {result['answered']}/{result['total']} {result['by_status']} "
        f"transport_errors={result['transport_errors']} "
        f"429_retries={result['rate_limited_retries']} p50={lat['p50']}ms p95={lat['p95']}ms "
        f"p99={lat['p99']}ms max={lat['max']}ms {result['throughput_rps']} req/s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
