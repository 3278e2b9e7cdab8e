"""Provides the test lab: real backends (Prometheus, Alertmanager, OpenSSH, ...) started on loopback for tests."""
