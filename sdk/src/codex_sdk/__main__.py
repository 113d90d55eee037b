"""Allows `python -m codex_sdk ...` as an alias of the `codex-sdk` console script."""

from .cli import main

raise SystemExit(main())
