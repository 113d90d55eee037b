"""Scale benchmark: the service on an empty ledger vs a 10-million-row one, plus lifecycle timings.

    python scripts/bench_scale.py [--rows 10000000] [--tenants 100] [--days 60]
                                  [--rounds 3] [--duration 8] [--json out.json] [--reuse]

Not a timed test: it prints figures for docs/scaling.md. In one run:

  1. two fresh, migrated databases (scripts/bench_ingest.py's prepare_service): `codex_scale_empty`
     and `codex_scale_loaded`; the second gets `--tenants` tenants (provisioned by the service)
     and `--rows` ledger rows spread evenly over them and the last `--days` days, each with its
     events_enriched row (and its idempotency row and a subject_id where the schema has them),
     bulk-loaded as the owner with INSERT .. SELECT generate_series in chunks, then VACUUM ANALYZE.
     Month partitions are created first when the ledger is partitioned (the lifecycle schema).
  2. one gunicorn service on each (production settings, gunicorn.conf.py), driven by wrk at
     concurrency 50 in alternating rounds (empty, loaded, loaded, empty, ...) so machine noise hits
     both alike: single events (20% unique keys) and 100-event batches; req/s, events/s, p95.
  3. on the loaded database, through the service's own code as the app role: a tenant-day
     reconcile, the sweeper, a retention pass (`retention_enforce` when the schema has it; else
     the batched delete of the oldest day it would have to do), the erasure of one subject
     (`events_erase` when it exists), and EXPLAIN (ANALYZE) of the sweeper's and reconcile's
     statements as captured from that code (partition pruning shows in the plans).

--reuse keeps an already loaded `codex_scale_loaded` (same row count) instead of loading again.
Uses DATABASE_URL/REDIS_URL when set, else the embedded servers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_ingest as bi  # noqa: E402  (the shared benchmark machinery)

EMPTY_DB = "codex_scale_empty"
LOADED_DB = "codex_scale_loaded"
CHUNK = 500_000
ERASE_SUBJECT = "cust-7"


# --- loading -------------------------------------------------------------------------------------


def _columns(conn, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s",
        [table],
    ).fetchall()
    return {r[0] for r in rows}


def _partitioned(conn, table: str) -> bool:
    row = conn.execute("SELECT relkind FROM pg_class WHERE relname = %s", [table]).fetchone()
    return bool(row) and row[0] == "p"


# Per column of ingest_event: its value for generated row g (of n, over tenants t, from t0 over
# span seconds). Only the columns the table has are written, so the loader runs against the
# pre-partition schema and the lifecycle one alike.
_EVENT_EXPR = {
    "tenant_id": "(%(tenants)s::uuid[])[1 + (g %% %(t)s)]",
    # zero-padded: each tenant's keys arrive in index order (a random key per event costs the
    # same at ingest, but would make the bulk load of 10M rows several times slower)
    "idempotency_key": "'load-' || lpad(g::text, 10, '0')",
    "type": "(ARRAY['sale.completed','sale.refunded','stock.adjusted'])[1 + (g %% 3)]",
    "source": "'pos'",
    "received_at": "%(t0)s::timestamptz + make_interval(secs => g::float8 * %(span)s / %(n)s)",
    "occurred_at": "%(t0)s::timestamptz + make_interval(secs => g::float8 * %(span)s / %(n)s - 2)",
    "payload": (
        "jsonb_build_object('amount', ((g %% 10000) / 100.0)::text, 'currency', 'EUR',"
        " 'store', 's-' || (g %% 40), 'items', 1 + g %% 5)"
    ),
    "fingerprint": "md5(g::text) || md5((-g)::text)",
    "key_id": "''",
    "enriched_at": (
        "%(t0)s::timestamptz + make_interval(secs => g::float8 * %(span)s / %(n)s + 1)"
    ),
    "enrich_attempts": "0",
    # each tenant has 1,000 subjects of about n / t / 1000 events each
    "subject_id": "'cust-' || ((g / %(t)s) %% 1000)",
}
_ENRICHED_EXPR = {
    "tenant_id": "e.tenant_id",
    "event_id": "e.id",
    "type": "e.type",
    "source": "e.source",
    "occurred_at": "e.occurred_at",
    "occurred_date": "(e.occurred_at AT TIME ZONE 'UTC')::date",
    "received_at": "e.received_at",
    "amount_minor": "((e.payload->>'amount')::numeric * 100)::bigint",
    "currency": "'EUR'",
    "lag_ms": "2000",
    "enriched_at": "e.enriched_at",
}
_IDEM_EXPR = {
    "tenant_id": "e.tenant_id",
    "idempotency_key": "e.idempotency_key",
    "fingerprint": "e.fingerprint",
    "event_id": "e.id",
    "received_at": "e.received_at",
}


def load_sql(conn) -> str:
    """One statement that writes a chunk of events, their enriched rows and idempotency rows."""
    ev_cols = [c for c in _EVENT_EXPR if c in _columns(conn, "ingest_event")]
    en_cols = [c for c in _ENRICHED_EXPR if c in _columns(conn, "events_enriched")]
    returning = sorted({"id", "tenant_id", "idempotency_key", "fingerprint"} | set(ev_cols))
    parts = [
        "WITH e AS (INSERT INTO ingest_event ({}) SELECT {} FROM generate_series(%(a)s, %(b)s) g"
        " RETURNING {})".format(
            ", ".join(ev_cols), ", ".join(_EVENT_EXPR[c] for c in ev_cols), ", ".join(returning)
        )
    ]
    idem_cols = _columns(conn, "ingest_idempotency")
    if idem_cols:
        cols = [c for c in _IDEM_EXPR if c in idem_cols]
        parts.append(
            ", i AS (INSERT INTO ingest_idempotency ({}) SELECT {} FROM e)".format(
                ", ".join(cols), ", ".join(_IDEM_EXPR[c] for c in cols)
            )
        )
    parts.append(
        " INSERT INTO events_enriched ({}) SELECT {} FROM e".format(
            ", ".join(en_cols), ", ".join(_ENRICHED_EXPR[c] for c in en_cols)
        )
    )
    return "".join(parts)


def ensure_partitions(env: dict, start: datetime, end: datetime) -> str:
    """Month partitions for [start, end] when the ledger is partitioned (the service's own code)."""
    code = (
        "import django, json, sys; django.setup();"
        "from datetime import datetime;"
        "from codex.db import roles;"
        "from ingest import partitions as p;"
        "s, e = (datetime.fromisoformat(x) for x in sys.argv[1:3]);"
        "roles.enter_owner_mode();"
        "print(p.partitions_ensure(since=s.date(), today=e.date()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, start.isoformat(), end.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"creating partitions failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip()


def provision_tenants(env: dict, count: int) -> None:
    """`count` more tenants through the service's provisioning (slugs load-001, ...)."""
    code = (
        "import django, sys; django.setup();"
        "from tenants.services.tenants import tenant_provision;"
        "[tenant_provision(slug=f'load-{i:03d}', name=f'Load {i}', actor='bench')"
        " for i in range(1, int(sys.argv[1]) + 1)]"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(count)],
        cwd=ROOT,
        env=dict(env, LOG_LEVEL="WARNING"),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def load(db_url: str, env: dict, *, rows: int, tenants: int, days: int) -> dict:
    """Bulk-load the ledger as the owner; return what it took."""
    provision_tenants(env, tenants - 1)  # plus the `bench` tenant prepare_service made
    end = datetime.now(UTC) - timedelta(hours=1)
    start = end - timedelta(days=days)
    conn = bi.pg(db_url)
    partitioned = _partitioned(conn, "ingest_event")
    figures: dict = {"partitioned": partitioned}
    if partitioned:
        figures["partitions"] = ensure_partitions(env, start, end)
    ids = [r[0] for r in conn.execute("SELECT id FROM tenants_tenant ORDER BY slug").fetchall()]
    assert len(ids) == tenants, (len(ids), tenants)
    statement = load_sql(conn)
    conn.execute("SET synchronous_commit = off")
    # The composite foreign key's per-row trigger was 15% of the load; the rows are consistent by
    # construction (each enriched row comes from the event inserted with it), so skip triggers.
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET maintenance_work_mem = '256MB'")
    started = time.monotonic()
    for a in range(1, rows + 1, CHUNK):
        b = min(rows, a + CHUNK - 1)
        chunk_started = time.monotonic()
        conn.execute(
            statement,
            {
                "tenants": ids,
                "t": tenants,
                "t0": start,
                "span": days * 86400,
                "n": rows,
                "a": a,
                "b": b,
            },
        )
        print(
            f"loaded {b:>10,} / {rows:,} rows "
            f"({(b - a + 1) / (time.monotonic() - chunk_started):,.0f} rows/s)",
            file=sys.stderr,
        )
    figures["load_s"] = time.monotonic() - started
    started = time.monotonic()
    conn.autocommit = True
    for table in ("ingest_event", "events_enriched", "ingest_idempotency"):
        if _columns(conn, table):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    figures["vacuum_s"] = time.monotonic() - started
    figures["size"] = conn.execute(
        "SELECT pg_size_pretty(pg_database_size(current_database()))"
    ).fetchone()[0]
    figures["window"] = [start.isoformat(), end.isoformat()]
    conn.close()
    return figures


# --- operations on the loaded ledger (run inside the service's environment) -----------------------


def _explain(sql_text: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql_text)
        return "\n".join(r[0] for r in cursor.fetchall())


def _ledger_queries(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if ("ingest_event" in q["sql"] or "events_enriched" in q["sql"])
        and not q["sql"].lstrip().upper().startswith(("SET", "EXPLAIN"))
    ]


def operations(window_start: str) -> dict:
    """(--ops) Every operation; one failing (e.g. a statement timeout) is reported, not fatal."""
    import django

    django.setup()
    out: dict = {}
    for step in (_op_reconcile, _op_sweep, _op_erase, _op_retention):
        try:
            step(out, window_start)
        except Exception as exc:  # noqa: BLE001  (a benchmark reports the failure as a figure)
            out[step.__name__.removeprefix("_op_") + "_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _setup() -> tuple:
    from tenants.models import Tenant
    from tenants.scope import system_scope

    with system_scope("bench"):
        return Tenant.objects.get(slug="load-001"), Tenant


def _op_reconcile(out: dict, window_start: str) -> None:
    """One tenant, one full UTC day in the middle of the window."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reconcile.services import drift_compute
    from tenants.scope import tenant_scope

    tenant, _ = _setup()
    day = (datetime.fromisoformat(window_start) + timedelta(days=30)).date()
    with CaptureQueriesContext(connection) as captured:
        began = time.monotonic()
        outcome = drift_compute(day=day, tenant_id=tenant.id)
        out["reconcile_s"] = time.monotonic() - began
    run = outcome.runs[0]
    out["reconcile"] = {"day": day.isoformat(), "accepted": run.accepted, "enriched": run.enriched}
    with tenant_scope(tenant.id):
        out["reconcile_plans"] = [_explain(q) for q in _ledger_queries(captured)]


def _op_sweep(out: dict, window_start: str) -> None:
    """The sweeper: cross-tenant, events accepted and not yet enriched."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ingest.selectors import events_unenriched_by_tenant
    from tenants.scope import system_scope

    _setup()
    with CaptureQueriesContext(connection) as captured:
        began = time.monotonic()
        found = events_unenriched_by_tenant()
        out["sweep_s"] = time.monotonic() - began
    out["sweep_found"] = sum(found.values())
    with system_scope("bench"):
        out["sweep_plans"] = [_explain(q) for q in _ledger_queries(captured)]


def _op_erase(out: dict, window_start: str) -> None:
    """Erasure of one subject of one tenant (about 100 events)."""
    from django.core.management import call_command, get_commands

    tenant, _ = _setup()
    if "events_erase" not in get_commands():
        out["erase"] = "events_erase not on this commit"
        return
    began = time.monotonic()
    call_command("events_erase", tenant.slug, subject=ERASE_SUBJECT)
    out["erase_s"] = time.monotonic() - began
    out["erase"] = f"{tenant.slug} --subject {ERASE_SUBJECT}"


def _op_retention(out: dict, window_start: str) -> None:
    """What the service does when the oldest day falls out of the retention period."""
    from django.core.management import call_command, get_commands
    from django.db import connection

    from tenants.scope import system_scope, tenant_scope

    _, tenant_model = _setup()
    oldest = datetime.fromisoformat(window_start).date()
    keep_days = (datetime.now(UTC).date() - oldest).days - 1  # the oldest day is now expired
    if "retention_enforce" in get_commands():
        from flags.services import flag_update

        flag_update(
            tenant_id=None,
            values={"retentionDays": keep_days},
            actor="bench",
            via="cli",
            reason="benchmark: expire the oldest day",
        )
        began = time.monotonic()
        call_command("retention_enforce")
        out["retention_s"] = time.monotonic() - began
        out["retention"] = f"retention_enforce with global retentionDays={keep_days}"
        # Then the whole oldest month out of retention: its partitions can be dropped.
        next_month = date(oldest.year + oldest.month // 12, oldest.month % 12 + 1, 1)
        keep_days = (datetime.now(UTC).date() - next_month).days
        flag_update(
            tenant_id=None,
            values={"retentionDays": keep_days},
            actor="bench",
            via="cli",
            reason="benchmark: expire the oldest month",
        )
        began = time.monotonic()
        call_command("retention_enforce")
        out["retention_month_s"] = time.monotonic() - began
        out["retention_month"] = f"retention_enforce with global retentionDays={keep_days}"
        return
    # Without partitions: per tenant (tenant_id leads every index), batched deletes of the
    # expired events and their enriched rows.
    cutoff = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC) + timedelta(days=1)
    with system_scope("bench"):
        tenant_ids = list(tenant_model.objects.values_list("id", flat=True))
    began = time.monotonic()
    deleted = 0
    for tid in tenant_ids:
        while True:
            with tenant_scope(tid), connection.cursor() as cursor:
                cursor.execute(_DELETE_BATCH_SQL, [tid, cutoff])
                gone = cursor.fetchone()[0]
            deleted += gone
            if gone < 10_000:
                break
    out["retention_s"] = time.monotonic() - began
    out["retention"] = (
        "retention_enforce not on this commit: per-tenant batched DELETEs (10,000 events a "
        f"statement, with their enriched rows) of the oldest day: {deleted} events"
    )


_DELETE_BATCH_SQL = """
WITH gone AS (
    DELETE FROM ingest_event WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM ingest_event WHERE tenant_id = %s AND received_at < %s LIMIT 10000))
    RETURNING tenant_id, id
), enriched AS (
    DELETE FROM events_enriched ee USING gone
    WHERE ee.tenant_id = gone.tenant_id AND ee.event_id = gone.id
)
SELECT count(*) FROM gone
"""


# --- the run -------------------------------------------------------------------------------------


def _service(name: str, env: dict) -> bi.Server:
    port = bi.free_port()
    return bi.start_gunicorn(
        name,
        ["-c", "gunicorn.conf.py", "codex.wsgi:application"],
        dict(env, BIND=f"127.0.0.1:{port}"),
        "/healthz",
        port,
    )


def _drive(wrk_bin, srv, key, tmp: Path, duration: float, batch: int) -> bi.Run:
    expect = 6000 if batch == 1 else 400
    lines = int(expect * (duration + 2))
    req_file = tmp / f"requests-{srv.name}-{batch}.txt"
    bi.write_requests(
        req_file,
        key_id=key["key_id"],
        secret=key["secret"],
        url_path="/v1/events",
        count=lines,
        batch=batch,
        unique=0.2,
    )
    bi.wrk(wrk_bin, srv.url, req_file, 1, lines, batch)  # warm-up
    return bi.wrk(wrk_bin, srv.url, req_file, duration, lines, batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--ops", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ops:
        print(json.dumps(operations(args.ops)))
        return 0

    wrk_bin = bi.ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="codex-scale-"))
    queue = f"scale-{os.getpid()}"
    figures: dict = {"rows": args.rows, "tenants": args.tenants, "days": args.days}
    _, env_empty, key_empty = bi.prepare_service(tmp / "empty", queue + "-e", EMPTY_DB)
    loaded_url = None
    if args.reuse:
        owner = os.environ.get("DATABASE_URL")
        if not owner:
            from codex import embedded

            owner = embedded.postgres_url()
        loaded_url = bi.with_db(owner, LOADED_DB)
        state = Path(tempfile.gettempdir()) / f"{LOADED_DB}.json"
        if state.exists() and json.loads(state.read_text()).get("rows") == args.rows:
            saved = json.loads(state.read_text())
            env_loaded, key_loaded = saved["env"], saved["key"]
            figures["load"] = saved["load"]
            print("reusing the loaded database", file=sys.stderr)
        else:
            loaded_url = None
    if loaded_url is None:
        loaded_url, env_loaded, key_loaded = bi.prepare_service(
            tmp / "loaded", queue + "-l", LOADED_DB
        )
        figures["load"] = load(
            loaded_url, env_loaded, rows=args.rows, tenants=args.tenants, days=args.days
        )
        state = Path(tempfile.gettempdir()) / f"{LOADED_DB}.json"
        state.touch(mode=0o600)
        state.write_text(
            json.dumps(
                {"rows": args.rows, "env": env_loaded, "key": key_loaded, "load": figures["load"]}
            )
        )
    print(f"load: {figures['load']}", file=sys.stderr)

    servers = {
        "empty": _service("scale-empty", env_empty),
        "loaded": _service("scale-loaded", env_loaded),
    }
    keys = {"empty": key_empty, "loaded": key_loaded}
    results: dict[tuple[str, int], list[bi.Run]] = {}
    try:
        for rnd in range(1, args.rounds + 1):
            order = ["empty", "loaded"] if rnd % 2 else ["loaded", "empty"]
            for batch in (1, bi.BATCH):
                for name in order:
                    run = _drive(wrk_bin, servers[name], keys[name], tmp, args.duration, batch)
                    results.setdefault((name, batch), []).append(run)
                    print(
                        f"round {rnd}: {name:<7} batch={batch:<3} {run.rps:8.0f} req/s "
                        f"{run.events_s:9.0f} ev/s p50 {run.p50_ms:6.1f} p95 {run.p95_ms:6.1f} ms "
                        f"non2xx={run.non2xx} errors={run.socket_errors}",
                        file=sys.stderr,
                    )
    finally:
        for srv in servers.values():
            srv.stop()

    ops = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--ops", figures["load"]["window"][0]],
        cwd=ROOT,
        env=env_loaded,
        capture_output=True,
        text=True,
    )
    if ops.returncode:
        print(f"operations failed:\n{ops.stderr[-4000:]}", file=sys.stderr)
        figures["ops"] = {"error": ops.stderr[-2000:]}
    else:
        figures["ops"] = json.loads(ops.stdout.strip().splitlines()[-1])

    print()
    print(
        f"{args.rows:,} rows over {args.tenants} tenants and {args.days} days; "
        f"median of {args.rounds} alternating rounds of {args.duration:g} s, wrk c={bi.CONCURRENCY}"
    )
    header = (
        f"{'ledger':<10}{'events/req':>11}{'req/s':>9}{'events/s':>10}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'non-2xx':>9}"
    )
    print(header)
    print("-" * len(header))
    table = {}
    for (name, batch), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = {
            f: statistics.median(getattr(r, f) for r in runs)
            for f in ("rps", "events_s", "p50_ms", "p95_ms")
        }
        m["non2xx"] = sum(r.non2xx + r.socket_errors for r in runs)
        table[f"{name}/{batch}"] = m
        print(
            f"{name:<10}{batch:>11}{m['rps']:>9.0f}{m['events_s']:>10.0f}{m['p50_ms']:>8.1f}"
            f"{m['p95_ms']:>8.1f}{int(m['non2xx']):>9}"
        )
    figures["table"] = table
    figures["runs"] = {f"{k[0]}/{k[1]}": [vars(r) for r in v] for k, v in results.items()}
    ops_out = figures["ops"]
    for key in ("reconcile_s", "sweep_s", "retention_s", "retention_month_s", "erase_s"):
        if key in ops_out:
            print(f"{key}: {ops_out[key]:.3f}")
    for key in ("reconcile", "sweep_found", "retention", "retention_month", "erase"):
        if key in ops_out:
            print(f"{key}: {ops_out[key]}")
    for key, value in ops_out.items():
        if key.endswith("_error"):
            print(f"{key}: {value}")
    for key in ("reconcile_plans", "sweep_plans"):
        for plan in ops_out.get(key, []):
            print(f"--- {key}\n{plan}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
