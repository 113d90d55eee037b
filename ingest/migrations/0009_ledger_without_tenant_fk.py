"""The ledger's tenant_id loses its database foreign key (the Django relation stays).

The deferred check ran once per event at commit, a SELECT .. FOR KEY SHARE of the tenant's row:
13-14% of PostgreSQL's CPU for a 100-event batch (docs/performance.md). ingest_idempotency went
the same way in 0006; why the tenant id still holds is in ingest.models.Event.
"""

import django.db.models.deletion
from django.db import migrations, models

CONSTRAINT = "ingest_event_tenant_id_a9ee7033_fk_tenants_tenant_id"


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0008_ledger_write_function"),
        ("tenants", "0004_tenant_offboarded"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # SQL, not AlterField: the ledger is partitioned and the constraint's name is the one
            # migration 0005 gave it; dropping it on the parent drops it on every partition.
            database_operations=[
                migrations.RunSQL(
                    f"ALTER TABLE ingest_event DROP CONSTRAINT IF EXISTS {CONSTRAINT}",
                    f"ALTER TABLE ingest_event ADD CONSTRAINT {CONSTRAINT} FOREIGN KEY (tenant_id)"
                    " REFERENCES tenants_tenant (id) DEFERRABLE INITIALLY DEFERRED",
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="tenant",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenants.tenant",
                    ),
                )
            ],
        )
    ]
