"""The cache-version table and the triggers of tenants' tables (tenants.cachesync polls it).

Schema only: no tenant row is read, moved or deleted, so no scope.
"""

from django.db import migrations

from tenants.cache_sql import TABLE_REVERSE_SQL, TABLE_SQL, trigger_sql

_TRIGGERS = [
    trigger_sql("tenants_tenant", "id", update_of=("status", "slug")),
    trigger_sql("tenants_device", "tenant_id", update_of=("revoked_at", "name")),
    trigger_sql(
        "tenants_signingkey",
        "tenant_id",
        update_of=("key_id", "secret_encrypted", "status", "not_after", "device_id"),
    ),
    trigger_sql(
        "tenants_webhooksource",
        "tenant_id",
        update_of=(
            "source_id",
            "kind",
            "secret_encrypted",
            "previous_secret_encrypted",
            "previous_valid_until",
            "type_field",
            "subject_field",
            "api_key_encrypted",
            "enabled",
        ),
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_webhooksource_subject_field"),
    ]

    operations = [
        migrations.RunSQL(sql=TABLE_SQL, reverse_sql=TABLE_REVERSE_SQL),
        migrations.RunSQL(
            sql=[create for create, _ in _TRIGGERS],
            reverse_sql=[drop for _, drop in reversed(_TRIGGERS)],
        ),
    ]
