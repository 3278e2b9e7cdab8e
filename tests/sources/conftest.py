"""Provides the ``sources`` marker on every test under tests/sources/ (the sources against the lab's real components), and the fake NVML the probe tests share."""

import os
from pathlib import Path

import pytest

from tests.lab.fakenvml import build_fake_nvml
from tests.lab.procs import SKIP_ENV, require_binary, skipped_components
from tests.probe_support import FakeNvml

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.sources)


@pytest.fixture(scope="session")
def fake_nvml(lab_dir) -> FakeNvml:
    """The fake NVML, compiled once per session with gcc."""
    if "nvml" in skipped_components():
        pytest.skip(f"fake NVML opted out ({SKIP_ENV}={os.environ.get(SKIP_ENV)})")
    gcc = require_binary("gcc", "nvml")
    libdir = Path(lab_dir) / "fakenvml"
    build_fake_nvml(libdir, gcc=gcc)
    return FakeNvml(libdir)
