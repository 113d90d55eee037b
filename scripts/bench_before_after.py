"""`make bench` (the service part) at two commits in one run, alternating, for a fair comparison.

    python scripts/bench_before_after.py --before REF [--after REF] [--rounds 3] [--duration 8]

Checks `--before` (and `--after`, default: this checkout) out into temporary git worktrees and
runs scripts/bench_ingest.py --only service --rounds 1 of each in turn (before, after, after,
before, ...), so the noise of a shared machine falls on both alike. Both use the same PostgreSQL
and Redis (DATABASE_URL/REDIS_URL, else this checkout's embedded servers) and this Python. Prints
every round and the medians: single-event req/s and p95, 100-event batch events/s and p95, the
enrichment drain; and after/before ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = (
    ("single req/s", "service /v1/events x1", "rps"),
    ("single p95 ms", "service /v1/events x1", "p95_ms"),
    ("batch events/s", "service /v1/events x100", "events_s"),
    ("batch p95 ms", "service /v1/events x100", "p95_ms"),
)


def _worktree(ref: str, tmp: Path, name: str) -> Path:
    path = tmp / name
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref],
        check=True,
    )
    return path


def _one(checkout: Path, env: dict, args, out: Path) -> dict:
    run = subprocess.run(
        [
            sys.executable,
            str(checkout / "scripts" / "bench_ingest.py"),
            "--only",
            "service",
            "--rounds",
            "1",
            "--duration",
            str(args.duration),
            "--sustain",
            str(args.sustain),
            "--json",
            str(out),
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise SystemExit(f"bench in {checkout} failed:\n{run.stderr[-3000:]}")
    doc = json.loads(out.read_text())
    figures = {label: doc["runs"][key][0][field] for label, key, field in FIELDS}
    figures["drain events/s"] = doc["drain_events_s"][0]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--sustain", type=float, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        from codex import embedded

        env.setdefault("DATABASE_URL", embedded.postgres_url())
        env.setdefault("REDIS_URL", embedded.redis_url())
    tmp = Path(tempfile.mkdtemp(prefix="codex-ab-"))
    trees = {"before": _worktree(args.before, tmp, "before")}
    trees["after"] = _worktree(args.after, tmp, "after") if args.after else ROOT
    results: dict[str, list[dict]] = {"before": [], "after": []}
    try:
        for rnd in range(1, args.rounds + 1):
            order = ("before", "after") if rnd % 2 else ("after", "before")
            for name in order:
                figures = _one(trees[name], env, args, tmp / f"{name}-{rnd}.json")
                results[name].append(figures)
                print(
                    f"round {rnd} {name:<6} "
                    + "  ".join(f"{k} {v:,.1f}" for k, v in figures.items()),
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for path in trees.values():
            if path != ROOT:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                    check=False,
                )
        shutil.rmtree(tmp, ignore_errors=True)

    labels = [label for label, _, _ in FIELDS] + ["drain events/s"]
    print(f"\nmedian of {args.rounds} alternating rounds (before = {args.before})")
    print(f"{'':<16}{'before':>12}{'after':>12}{'after/before':>14}")
    medians = {}
    for label in labels:
        b = statistics.median(r[label] for r in results["before"])
        a = statistics.median(r[label] for r in results["after"])
        medians[label] = {"before": b, "after": a, "ratio": a / b if b else float("nan")}
        print(f"{label:<16}{b:>12,.1f}{a:>12,.1f}{a / b if b else float('nan'):>14.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
