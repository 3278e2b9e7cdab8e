"""Provides reusable widgets that know nothing about backends."""
