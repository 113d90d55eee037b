"""SQL of the cache-version table and its triggers (migrations of tenants and flags use it).

Every write that can change what a process caches about a tenant (its status, keys, devices,
sources, flags) bumps that tenant's row in `tenants_cacheversion`, in the writer's own
transaction, by trigger: no write path (service, admin, shell, raw SQL) can forget it, and a
writer that crashes after its commit cannot lose it. Processes poll the table (tenants.cachesync).
"""

from __future__ import annotations

TABLE_SQL = [
    """
    CREATE TABLE tenants_cacheversion (
        scope text PRIMARY KEY,
        version bigint NOT NULL,
        changed_at timestamptz NOT NULL,
        xid xid8 NOT NULL
    )
    """,
    # The poll reads the rows of transactions its previous snapshot could not see: xid >= that
    # snapshot's xmin. Exact whatever a writer's transaction lasted (no time window to outlive).
    "CREATE INDEX tenants_cacheversion_xid_idx ON tenants_cacheversion (xid)",
    # scope: the tenant's id as text, or '*' for what every tenant reads (global flags). Not a
    # tenant table (no tenant_id column, no RLS): it says only that something changed, and when.
    """
    CREATE FUNCTION tenants_cacheversion_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        s text;
    BEGIN
        IF TG_ARGV[0] = '*' THEN
            s := '*';
        ELSIF TG_OP = 'DELETE' THEN
            s := to_jsonb(OLD) ->> TG_ARGV[0];
        ELSE
            s := to_jsonb(NEW) ->> TG_ARGV[0];
        END IF;
        INSERT INTO tenants_cacheversion AS v (scope, version, changed_at, xid)
        VALUES (s, 1, clock_timestamp(), pg_current_xact_id())
        ON CONFLICT (scope) DO UPDATE
            SET version = v.version + 1, changed_at = excluded.changed_at, xid = excluded.xid;
        RETURN NULL;
    END
    $$
    """,
]
TABLE_REVERSE_SQL = [
    "DROP FUNCTION IF EXISTS tenants_cacheversion_bump() CASCADE",
    "DROP TABLE IF EXISTS tenants_cacheversion",
]


def trigger_sql(table: str, column: str, *, update_of: tuple[str, ...] = ()) -> tuple[str, str]:
    """(create, drop) of the trigger that bumps `column`'s scope on writes to `table`.

    `update_of`: only updates of these columns count (counters and last-used times do not).
    """
    name = f"{table}_cacheversion"
    update = f"UPDATE OF {', '.join(update_of)}" if update_of else "UPDATE"
    create = (
        f"CREATE TRIGGER {name} AFTER INSERT OR {update} OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION tenants_cacheversion_bump('{column}')"
    )
    return create, f"DROP TRIGGER IF EXISTS {name} ON {table}"
