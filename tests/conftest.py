"""Provides the shared pytest setup: the test lab's fixtures (lab_dir, lab_prometheus, lab_sshd, ...)."""

pytest_plugins = ("tests.lab.plugin", "tests.plugins.snapshots")
