"""manage.py flags show|set|unset: same service (history, cache), clear errors, no traceback."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from flags.models import FlagChange
from flags.selectors import effective_flags
from tenants.scope import system_scope
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("flags", *args, stdout=out)
    return out.getvalue()


def test_show_global_lists_every_flag_with_its_source(db):
    out = run("show")
    for line in ("syncEnabled", "minIntervalSec", "retryCap", "ingestRatePerSec"):
        assert line in out
    assert "(default)" in out


def test_set_for_a_tenant_changes_config_and_writes_history(db, commit_hooks):
    tenant = TenantFactory(slug="store-7")
    effective_flags(tenant_id=tenant.id)  # warm the cache: the CLI must invalidate it
    out = commit_hooks(run, "set", "--tenant", "store-7", "syncEnabled=false", "minIntervalSec=60")
    assert "syncEnabled (inherit: true) -> false" in out
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is False
    assert effective_flags(tenant_id=tenant.id)["minIntervalSec"] == 60
    with system_scope("test"):
        rows = list(FlagChange.objects.values_list("via", "actor"))
    assert len(rows) == 2
    assert all(via == "cli" and actor.startswith("cli") for via, actor in rows)


def test_unset_makes_the_tenant_follow_the_global_value_again(db, commit_hooks):
    tenant = TenantFactory(slug="store-8")
    commit_hooks(run, "set", "--global", "retryCap=6")
    commit_hooks(run, "set", "--tenant", "store-8", "retryCap=1")
    assert effective_flags(tenant_id=tenant.id)["retryCap"] == 1
    commit_hooks(run, "unset", "--tenant", "store-8", "retryCap")
    assert effective_flags(tenant_id=tenant.id)["retryCap"] == 6
    doc = json.loads(run("show", "--tenant", "store-8", "--json"))
    assert doc["flags"]["retryCap"] == {"value": 6, "source": "global", "global": 6}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "--global", "retryCap=11"), "retryCap: must be an integer from 0 to 10"),
        (("set", "--global", "syncEnabled=perhaps"), "syncEnabled: must be true or false"),
        (("set", "--global", "minIntervalSec"), "expected key=value"),
        (("set", "--global", "bogus=1"), "unknown flag"),
        (("set", "--tenant", "nobody", "retryCap=1"), "no tenant 'nobody'"),
        (("unset", "--tenant", "nobody", "retryCap"), "no tenant"),
        (("show", "--tenant", "nobody"), "no tenant"),
    ],
)
def test_invalid_input_is_a_clear_command_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_set_needs_tenant_or_global(db):
    with pytest.raises(CommandError, match="one of the arguments --tenant --global is required"):
        run("set", "retryCap=1")
