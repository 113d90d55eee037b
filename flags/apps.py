"""AppConfig for flags."""

from django.apps import AppConfig


class FlagsConfig(AppConfig):
    """Runtime flags and the /config endpoint."""

    name = "flags"
