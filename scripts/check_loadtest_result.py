#!/usr/bin/env python3
"""Load-test gate: `check_loadtest_result.py result.json TOTAL RATIO [--p95-ms 1000]`.

Exits 0 only if exactly TOTAL requests were answered, accepted == TOTAL x RATIO, duplicates are
the rest, there were zero 5xx and zero transport errors, and p95 latency is under 1 s. Otherwise
it prints every reason and exits 1 (2 for unusable input).
"""

from __future__ import annotations

import argparse
import json
import sys


def problems(result: dict, total: int, ratio: float, p95_limit_ms: float) -> list[str]:
    """Every way the result misses the gate (empty when it passes)."""
    found: list[str] = []
    by_status = {str(k): int(v) for k, v in (result.get("by_status") or {}).items()}
    answered = sum(by_status.values())
    expected_accepted = round(total * ratio)
    accepted = int(result.get("accepted", by_status.get("202", 0)))
    duplicates = int(result.get("duplicates", by_status.get("200", 0)))
    if answered != total:
        found.append(f"answered {answered} requests, expected exactly {total}")
    if accepted != expected_accepted:
        found.append(f"accepted {accepted}, expected {expected_accepted} (= {total} x {ratio})")
    if duplicates != total - expected_accepted:
        found.append(f"duplicates {duplicates}, expected {total - expected_accepted}")
    server_errors = sum(n for s, n in by_status.items() if s.startswith("5"))
    if server_errors:
        found.append(f"{server_errors} server errors (5xx)")
    other = {
        s: n for s, n in by_status.items() if s not in ("200", "202") and not s.startswith("5")
    }
    if other:
        found.append(f"unexpected statuses {other}")
    transport = int(result.get("transport_errors", 0))
    if transport:
        types = result.get("transport_error_types") or {}
        found.append(f"{transport} transport errors {types}")
    p95 = (result.get("latency_ms") or {}).get("p95")
    if p95 is None:
        found.append("no p95 latency in the result")
    elif float(p95) >= p95_limit_ms:
        found.append(f"p95 latency {p95} ms, must be under {p95_limit_ms:g} ms")
    return found


def main(argv: list[str] | None = None) -> int:
    """Check the file; print the verdict and why."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("result")
    p.add_argument("total", type=int)
    p.add_argument("ratio", type=float, help="expected accepted / total, e.g. 0.2")
    p.add_argument("--p95-ms", type=float, default=1000.0)
    args = p.parse_args(argv)
    try:
        with open(args.result) as fh:
            result = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"FAIL: cannot read {args.result}: {exc}")
        return 2
    if not isinstance(result, dict):
        print(f"FAIL: {args.result} is not a result object")
        return 2
    found = problems(result, args.total, args.ratio, args.p95_ms)
    lat = result.get("latency_ms") or {}
    summary = (
        f"answered={sum((result.get('by_status') or {}).values())} "
        f"accepted={result.get('accepted')} duplicates={result.get('duplicates')} "
        f"p95={lat.get('p95')}ms throughput={result.get('throughput_rps')} req/s"
    )
    if found:
        print("FAIL: " + summary)
        for reason in found:
            print(f"  - {reason}")
        return 1
    print("PASS: " + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
