"""Ingestion warnings carry the refused item's subject_id, so events_erase finds them.

Schema only: a new column (an empty-string database default, so no row is read, rewritten or
moved, and no system scope is needed) and a partial index per tenant over the rows that have one.
Warnings written before it have an empty subject_id; erasure finds those through their text.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0006_idempotency_without_fk"),
    ]

    operations = [
        migrations.AddField(
            model_name="ingestwarning",
            name="subject_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=255),
        ),
        migrations.AddIndex(
            model_name="ingestwarning",
            index=models.Index(
                condition=models.Q(("subject_id", ""), _negated=True),
                fields=["tenant", "subject_id"],
                name="ingest_warning_subject",
            ),
        ),
    ]
