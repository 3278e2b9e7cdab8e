"""Provides the ``sources`` marker on every test under tests/sources/: the sources against the lab's real components (each test also names its components' markers)."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.sources)
