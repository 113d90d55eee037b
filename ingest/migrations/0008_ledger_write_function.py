"""The ledger write as a PL/pgSQL function, codex_ledger_write (ingest/services/ledger_write.py).

Its statements' plans are kept per server session (planned once, not per request), which needs
nothing from the client and so works the same through a transaction-pooling PgBouncer.
"""

from django.db import migrations

FUNCTION_NAME = "codex_ledger_write"
_BODY_SQL = """
WITH u AS (
    SELECT * FROM jsonb_to_recordset(p_rows::jsonb)
        AS u(k text, t text, s text, o timestamptz, p jsonb, f text, j text)
), claimed AS (
    INSERT INTO ingest_idempotency (tenant_id, idempotency_key, fingerprint, event_id, received_at)
    SELECT p_tenant, u.k, u.f, nextval('ingest_event_id_seq'), now() FROM u
    ORDER BY u.k
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING idempotency_key, event_id, received_at
), stored AS (
    INSERT INTO ingest_event
        (id, tenant_id, idempotency_key, type, source, occurred_at, received_at, payload,
         fingerprint, key_id, subject_id)
    SELECT c.event_id, p_tenant, u.k, u.t, u.s, u.o, c.received_at, u.p, u.f, p_key_id, u.j
    FROM claimed c JOIN u ON u.k = c.idempotency_key
    RETURNING id, idempotency_key
)
SELECT stored.id, stored.idempotency_key::text, NULL::text FROM stored
UNION ALL
SELECT i.event_id, i.idempotency_key::text, i.fingerprint::text
FROM u CROSS JOIN LATERAL (
    SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
    WHERE tenant_id = p_tenant AND idempotency_key = u.k
) i
WHERE NOT EXISTS (SELECT FROM claimed c WHERE c.idempotency_key = u.k)
"""
# The rows travel as one JSON document (jsonb_to_recordset), not as six arrays: one parameter to
# quote instead of one per value, which client-side binding does in Python.
# Exactly once per (tenant, key) is the idempotency table's primary key (a partitioned ledger
# cannot carry that unique constraint): a key claimed there gets its event id from the ledger's
# sequence and its ledger row in the same statement; a key already there gets neither.
# Keys are claimed in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.
# The same statement answers for the keys it did not claim (fingerprint not NULL), looking up
# only those, one primary-key probe each: a batch of new keys probes nothing more (a SELECT of
# every key cost about 0.8 ms of PostgreSQL per 100-event batch). The data-modifying CTEs
# cannot see each other's rows, so that lookup sees exactly the keys stored before this
# statement's snapshot. A key that a concurrent request committed after it (the INSERT waited
# on it, then skipped it) is in neither half: existing(), a new statement with a fresh
# snapshot, finds those.
#
# Why a function: planning that statement costs PostgreSQL about 0.16 ms, more than running it
# for one event (the minimal view's INSERT plans in 0.01 ms). PL/pgSQL keeps its statements'
# plans per server session, so each session plans it once; unlike a PREPARE, that needs nothing
# from the client and works the same through a transaction-pooling PgBouncer. The plan kept is
# the generic one (plan_cache_mode), made from the statistics of its moment: one made while the
# idempotency table was empty scanned it (sequentially, or every row of the tenant by primary
# key) for the unclaimed keys, 10 -> 45 ms per 100-event batch as it grew to 60,000 rows. So the
# lookup is a per-key join on the whole primary key and the function runs with sequential
# scans off: every plan it can get probes the primary key (flat 2.6-3.5 ms per batch over the
# same growth; tests/ingest/test_ledger_write.py reads the plan). It is SECURITY INVOKER: the
# row-level security of the tenant scope it opens applies inside, as to any statement. Opening
# the scope itself makes the call one statement, sent with server-side binding: the rows
# document travels as a parameter, not quoted into the query text in Python (about 5% of a
# 100-event batch's CPU), and no multi-statement string is parsed.
CREATE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION_NAME}(p_rows text, p_tenant uuid, p_key_id text)
RETURNS TABLE (out_id bigint, out_key text, out_fingerprint text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
SET search_path FROM CURRENT
AS $fn$
DECLARE
    prev_tenant text := coalesce(current_setting('app.tenant_id', true), '');
    prev_system text := coalesce(current_setting('app.system_scope', true), '');
BEGIN
    -- The tenant's scope (row-level security reads it) for this statement, then the caller's
    -- back: transaction-local, so a failure rolls it back with everything else.
    PERFORM set_config('app.tenant_id', p_tenant::text, true),
        set_config('app.system_scope', '', true);
    RETURN QUERY {_BODY_SQL.strip()};
    PERFORM set_config('app.tenant_id', prev_tenant, true),
        set_config('app.system_scope', prev_system, true);
END
$fn$
"""
DROP_FUNCTION_SQL = f"DROP FUNCTION IF EXISTS {FUNCTION_NAME}(text, uuid, text)"


class Migration(migrations.Migration):
    dependencies = [("ingest", "0007_ingestwarning_subject")]

    operations = [migrations.RunSQL(CREATE_FUNCTION_SQL, DROP_FUNCTION_SQL)]
