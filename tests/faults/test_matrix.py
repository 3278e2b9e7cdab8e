"""Provides the check that the fault matrix is well formed: every row names every fault, with what is expected or why not."""

from __future__ import annotations

from tests.faults.matrix import FAULTS, MATRIX


def test_every_row_names_every_fault():
    for source, row in MATRIX.items():
        assert set(row) == set(FAULTS), source
        for fault, expected in row.items():
            assert expected.strip() and expected != "n/a: ", (source, fault)
