"""Bulk provisioning for the benchmark's tenant sweep: many tenants, many signing keys, in seconds.

    python scripts/bench/tenants.py TENANTS KEYS_PER_TENANT OUT   (in the service's environment)

Writes TENANTS tenants (slugs sweep-00001, ...) and KEYS_PER_TENANT active signing keys each, with
the real encryption (tenants.crypto: a new whsec_ secret, the ck_<tenant>_<random> key id, the
secret Fernet-encrypted with CODEX_SECRETS_KEY), through the ORM's bulk_create in a named system
scope (tenants.scope.system_scope: the row-level-security policy's cross-tenant WITH CHECK, as
tests/factories.py writes tenants). What tenant_provision does besides (the audit record, the
per-key transaction, the provisioning signal: flags need no rows, tenants follow the global
values) is skipped; the rows are the same. Idempotent per slug: existing sweep tenants are
dropped first.

OUT gets one line per key, `key_id<TAB>secret`, interleaved by tenant: line k is key k // TENANTS
of tenant k % TENANTS, so the first TENANTS lines are one key of every tenant, the first 100 one
key of 100 tenants, and all of them spread every tenant's keys evenly.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SLUG_PREFIX = "sweep-"


def provision(tenants: int, keys_per_tenant: int, out: Path) -> dict:
    """Write the tenants and keys; return timings."""
    import django

    django.setup()
    from tenants import crypto
    from tenants.models import SigningKey, Tenant
    from tenants.scope import system_scope

    started = time.monotonic()
    with system_scope("bench-provision"):
        Tenant.objects.filter(slug__startswith=SLUG_PREFIX).delete()
        rows = Tenant.objects.bulk_create(
            [
                Tenant(slug=f"{SLUG_PREFIX}{i:06d}", name=f"Sweep {i}")
                for i in range(1, tenants + 1)
            ],
            batch_size=5000,
        )
    tenants_s = time.monotonic() - started
    started = time.monotonic()
    keys: list[tuple[str, str]] = []
    objs = []
    for _ in range(keys_per_tenant):
        for tenant in rows:
            secret = crypto.new_signing_secret()
            key_id = crypto.new_key_id(tenant.id)
            keys.append((key_id, secret))
            objs.append(
                SigningKey(tenant=tenant, key_id=key_id, secret_encrypted=crypto.encrypt(secret))
            )
    encrypt_s = time.monotonic() - started
    started = time.monotonic()
    with system_scope("bench-provision"):
        SigningKey.objects.bulk_create(objs, batch_size=5000)
    keys_s = time.monotonic() - started
    with out.open("w") as f:
        f.writelines(f"{k}\t{s}\n" for k, s in keys)
    return {
        "tenants": len(rows),
        "keys": len(keys),
        "tenants_s": round(tenants_s, 2),
        "encrypt_s": round(encrypt_s, 2),
        "keys_s": round(keys_s, 2),
    }


def read_keys(path: Path) -> list[tuple[str, str]]:
    """The (key_id, secret) lines `provision` wrote."""
    return [tuple(line.split("\t")) for line in path.read_text().splitlines() if line]


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    print(json.dumps(provision(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))))
