"""Provides mutations of the cluster: plan, confirm, run, audit."""
