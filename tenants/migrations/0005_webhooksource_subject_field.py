"""WebhookSource.subject_field: a Standard Webhooks source's subject path (schema only, no rows)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_tenant_offboarded"),
    ]

    # Adds a column with a constant default: no row is read, moved or deleted, so no scope.
    operations = [
        migrations.AddField(
            model_name="webhooksource",
            name="subject_field",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
