"""Provides the Textual screens of sovtui."""
