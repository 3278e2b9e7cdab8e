"""Provides the ``unit`` marker on every test under tests/unit/: pure code, the demo and the CLI on the demo (no lab component)."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.unit)
