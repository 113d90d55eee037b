"""Source reconcile runs (reconcile --source stripe), a tenant table under forced RLS."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tenants import rls


class Migration(migrations.Migration):

    dependencies = [
        ('reconcile', '0001_initial'),
        ('tenants', '0003_webhooksource'),
    ]

    operations = [
        migrations.CreateModel(
            name='SourceReconcileRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source_id', models.CharField(max_length=64)),
                ('kind', models.CharField(max_length=16)),
                ('day', models.DateField(help_text="UTC day of the events' creation at the source")),
                ('window_start', models.DateTimeField()),
                ('window_end', models.DateTimeField()),
                ('at_source', models.BigIntegerField()),
                ('missing_at_ingest', models.BigIntegerField()),
                ('repaired', models.BigIntegerField(default=0)),
                ('run_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant', models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'source reconcile run',
                'db_table': 'reconcile_source_run',
                'ordering': ['tenant_id', '-day'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'source_id', 'day'), name='reconcile_source_run_per_day')],
            },
        ),
        *rls.tenant_table("reconcile_source_run"),
    ]
