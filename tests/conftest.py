"""Provides the shared pytest setup: the test lab's fixtures (lab_dir, lab_prometheus, lab_sshd, ...) and a private XDG state dir."""

import os
import tempfile

# loaded now, while the stack is shallow: Hypothesis imports it lazily in pytest's end-of-run summary, where
# CPython 3.11 can fail to compile it ("AST constructor recursion depth mismatch") after a long async run
import hypothesis.internal.conjecture.providers  # noqa: F401
import pytest

pytest_plugins = ("tests.lab.plugin", "tests.plugins.cli", "tests.plugins.snapshots")


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir():
    """No test reads or writes the developer's own state (logs, the audit log, journalled runs): a test that does not
    choose a state dir of its own gets a fresh one for the session."""
    old = os.environ.get("XDG_STATE_HOME")
    with tempfile.TemporaryDirectory(prefix="sovtui-test-state-") as path:
        os.environ["XDG_STATE_HOME"] = path
        yield path
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old
