"""Provides the data sources: one module per backend, no Textual imports."""
