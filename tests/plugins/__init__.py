"""Provides pytest plugins shared by the test suite."""
