"""The dead-letter list's state filter: one "All", and the default (open) shown as selected."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def _filter_links(html: str) -> list[tuple[bool, str]]:
    """(selected, label) of each choice under the "By state" heading."""
    section = html.split("By state", 1)[1].split("</ul>", 1)[0]
    return [
        ("selected" in attrs, label.strip())
        for attrs, label in re.findall(r"<li([^>]*)>\s*<a[^>]*>([^<]*)</a>", section)
    ]


def test_state_filter_has_one_all_and_marks_the_default_open_as_selected(admin_client):
    url = "/admin/ingest/deadletter/"
    links = _filter_links(admin_client.get(url).content.decode())
    assert [label for _sel, label in links] == ["Open", "Resolved", "All"]
    assert [label for sel, label in links if sel] == ["Open"]
    links = _filter_links(admin_client.get(url, {"state": "all"}).content.decode())
    assert [label for sel, label in links if sel] == ["All"]
    links = _filter_links(admin_client.get(url, {"state": "resolved"}).content.decode())
    assert [label for sel, label in links if sel] == ["Resolved"]
