"""The admin login is throttled per address after repeated failures (django-ratelimit)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client


def _login(client: Client, username: str, password: str, ip: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


@pytest.mark.django_db
def test_five_failures_then_even_the_right_password_gets_429_from_that_address():
    User.objects.create_superuser("boss", password="right-horse-battery")
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    client = Client()
    for _ in range(5):
        response = _login(client, "boss", "wrong", ip)
        assert response.status_code == 200  # the form again, with an error
    refused = _login(client, "boss", "right-horse-battery", ip)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    # Another address is not affected; the right password works there.
    other = _login(Client(), "boss", "right-horse-battery", ip + "1")
    assert other.status_code == 302
