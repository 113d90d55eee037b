"""Flag writes bump the cache versions (tenants.cachesync): a tenant's overrides, or '*'.

Schema only: no row is read, moved or deleted, so no scope.
"""

from django.db import migrations

from tenants.cache_sql import trigger_sql

_TRIGGERS = [
    trigger_sql("flags_tenantflag", "tenant_id"),
    trigger_sql("flags_globalflag", "*"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0002_flagchange_effective_values"),
        ("tenants", "0006_cache_versions"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[create for create, _ in _TRIGGERS],
            reverse_sql=[drop for _, drop in reversed(_TRIGGERS)],
        ),
    ]
