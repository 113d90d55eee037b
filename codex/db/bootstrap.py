"""A managed-shaped database owner, made the way a cloud console makes one (docs/tenancy.md).

RDS, Cloud SQL and Supabase hand out a login that owns its database but is no superuser and
has no BYPASSRLS, so forced row-level security applies to it like to anyone. The embedded
PostgreSQL and the test suite run the same way: the superuser only creates that login and the
database, and everything after (migrate, the service, every job) runs as the owner.

    python -m codex.db.bootstrap --admin-url postgresql://postgres@127.0.0.1/postgres \
        --owner codex_owner --database codex     # prints the owner's DATABASE_URL
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

# What a managed provider's master user has, and nothing more.
OWNER_ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE NOREPLICATION"
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


def managed_owner_ensure(
    admin: psycopg.Connection,
    *,
    owner: str,
    database: str,
    password: str | None = None,
    app_role: str = "codex_app",
    adopt: tuple[str, ...] = (),
) -> None:
    """As the superuser on `admin` (autocommit): the owner login and its database, idempotently.

    An existing role of that name is reshaped (a superuser owner would hide every RLS bug). An
    existing application role is handed over with ADMIN OPTION, as the owner would hold it had
    it created the role. `adopt` names further databases whose objects the owner takes over (a
    checkout whose database the superuser created before this existed).
    """
    if database in SYSTEM_DATABASES or any(name in SYSTEM_DATABASES for name in adopt):
        raise ValueError(f"refusing to hand a system database to {owner!r}")
    superuser = admin.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [owner]
    ).fetchone()
    if owner == admin.info.user or (superuser and superuser[0]):
        # Reshaping would demote an administrator's own login: name a new owner instead.
        raise ValueError(f"refusing to reshape {owner!r}: it is the administrator or a superuser")
    role = sql.Identifier(owner)
    secret = sql.SQL(" PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL("")
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    admin.execute(
        sql.SQL("{} ROLE {} " + OWNER_ATTRIBUTES + "{}").format(sql.SQL(verb), role, secret)
    )
    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role]).fetchone():
        admin.execute(
            sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(app_role), role)
        )
    for name in (database, *adopt):
        row = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if row is None:
            if name == database:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), role)
                )
            continue
        if row[0] != owner:
            admin.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), role)
            )
            _adopt_objects(admin, name, owner)


def _adopt_objects(admin: psycopg.Connection, database: str, owner: str) -> None:
    """Give the owner the tables, sequences and views of `public` that another role owns."""
    info = admin.info
    with psycopg.connect(
        dbname=database,
        user=info.user,
        password=info.password or None,
        host=info.host,
        port=info.port,
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        rows = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')"
            " AND NOT c.relispartition AND pg_get_userbyid(c.relowner) <> %s",
            [owner],
        ).fetchall()
        for name, kind in rows:
            what = {"S": "SEQUENCE", "v": "VIEW"}.get(kind, "TABLE")
            # ALTER TABLE on a partitioned table also hands over its partitions.
            conn.execute(
                sql.SQL("ALTER {} {} OWNER TO {}").format(
                    sql.SQL(what), sql.Identifier(name), sql.Identifier(owner)
                )
            )
        # Identity sequences and partitions follow their table; anything left over, too.
        rest = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
            " AND pg_get_userbyid(c.relowner) <> %s",
            [owner],
        ).fetchall()
        for (name,) in rest:
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )


def login_is_privileged(conn: psycopg.Connection) -> bool:
    """True when the connection's login is a superuser or has BYPASSRLS (RLS would not apply)."""
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user"
    ).fetchone()
    return bool(row and row[0])


def owner_url(admin_url: str, *, owner: str, password: str | None, database: str) -> str:
    """`admin_url` with the owner's login and database instead."""
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(owner, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc += f"@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + quote(database), parts.query, ""))


def main(argv: list[str]) -> int:
    """Create (or reshape) the owner and database; print the owner's DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m codex.db.bootstrap", description=__doc__)
    parser.add_argument("--admin-url", required=True, help="a superuser's postgres:// URL")
    parser.add_argument("--owner", default="codex_owner")
    parser.add_argument("--password", default=None)
    parser.add_argument("--database", default="codex")
    parser.add_argument("--app-role", default="codex_app")
    args = parser.parse_args(argv)
    with psycopg.connect(args.admin_url, autocommit=True, connect_timeout=10) as admin:
        try:
            managed_owner_ensure(
                admin,
                owner=args.owner,
                database=args.database,
                password=args.password,
                app_role=args.app_role,
            )
        except ValueError as exc:
            parser.error(str(exc))
    print(
        owner_url(args.admin_url, owner=args.owner, password=args.password, database=args.database)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
