"""Provides the sovtui package: a keyboard-first terminal UI for a sovereign AI cluster."""

__version__ = "0.1.0"
