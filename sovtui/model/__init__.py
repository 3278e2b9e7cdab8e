"""Provides the pure data model: dataclasses, health rules and the fused cluster view."""
