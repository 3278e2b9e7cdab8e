"""Provides the test suite as a package, so that tests.lab and tests.plugins import by name."""
