"""Provides the snapshot set-up: SVGs in the top-level snapshots/ folder, UTC and a fixed theme."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "snapshots"


def _dirname(cls, *, test_location) -> str:
    return str(SNAPSHOT_DIR / test_location.basename)


SVGImageExtension.dirname = classmethod(_dirname)


@pytest.fixture(autouse=True, scope="session")
def _utc_clock():
    """Times on screen are local; pin the zone so snapshots do not depend on the machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
