"""Webhook sources (tenants.models.WebhookSource), a tenant table under forced RLS."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tenants import rls


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0002_operator_permissions'),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookSource',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source_id', models.CharField(max_length=64)),
                ('kind', models.CharField(choices=[('shopify', 'Shopify'), ('stripe', 'Stripe'), ('standard', 'Standard')], max_length=16)),
                ('secret_encrypted', models.TextField(editable=False)),
                ('previous_secret_encrypted', models.TextField(blank=True, default='', editable=False)),
                ('previous_valid_until', models.DateTimeField(blank=True, null=True)),
                ('type_field', models.CharField(default='type', max_length=64)),
                ('api_key_encrypted', models.TextField(blank=True, default='', editable=False)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('last_received_at', models.DateTimeField(blank=True, null=True)),
                ('accepted_count', models.BigIntegerField(default=0)),
                ('duplicate_count', models.BigIntegerField(default=0)),
                ('tenant', models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, to='tenants.tenant')),
            ],
            options={
                'verbose_name': 'webhook source',
                'ordering': ['tenant_id', 'created_at'],
                'permissions': [('disable_webhooksource', 'Can disable and enable webhook sources'), ('rotate_webhooksource_secret', 'Can rotate webhook source secrets and set their API keys')],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'source_id'), name='webhooksource_id_per_tenant')],
            },
        ),
        # Row-level security (tenants.rls): tenant_id leads every key; policies fail closed.
        *rls.tenant_table("tenants_webhooksource"),
    ]
