"""Provides the check that the fault matrix is whole: every cell that applies has a test, and every fault test names a real cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import cells_of
from tests.faults.matrix import FAULTS, MATRIX, cells

HERE = Path(__file__).resolve().parent


def test_every_row_names_every_fault():
    for source, row in MATRIX.items():
        assert set(row) == set(FAULTS), source
        for fault, expected in row.items():
            assert expected.strip() and expected != "n/a: ", (source, fault)


def test_every_cell_has_a_test_and_every_test_a_cell(request):
    items = request.session.items
    collected = {Path(str(item.path)).resolve() for item in items}
    files = sorted(HERE.glob("test_*.py"))
    if any(f not in collected for f in files):
        pytest.skip("only a slice of tests/faults was collected: run the whole directory to check the matrix")
    marked: dict[tuple[str, str], list[str]] = {}
    for item in items:
        for cell in cells_of(item):
            marked.setdefault(cell, []).append(item.nodeid)
    wanted = set(cells())
    stray = {cell: ids for cell, ids in marked.items() if cell not in wanted}
    assert not stray, f"fault tests for cells the matrix does not have (or marks n/a): {stray}"
    missing = sorted(wanted - set(marked))
    assert not missing, f"cells of the fault matrix without a test: {missing}"
