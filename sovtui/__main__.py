"""Provides ``python -m sovtui``."""

from .cli import main

raise SystemExit(main())
