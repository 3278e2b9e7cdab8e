"""Provides the ``ui`` marker on every test under tests/ui/: the Textual app driven with Pilot, and the SVG snapshots of the demo."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.ui)
