"""Single source of the SDK version (also used in the User-Agent header)."""

__version__ = "0.2.0"
