"""Provides the fault matrix's pytest plumbing: the ``fault(source, fault)`` marker, the outcome of each cell, and ``docs/faults.md``.

When every cell of :data:`tests.faults.matrix.MATRIX` that applies ran in this session, the table of outcomes is
written to ``docs/faults.md`` (a slice of the matrix leaves the file alone).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.matrix import FAULTS, MATRIX, cells

DOCS = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
_OUTCOMES: dict[tuple[str, str], str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(source, fault): the test proves one cell of the fault matrix")


def cells_of(item: pytest.Item) -> list[tuple[str, str]]:
    """The cells a test proves: one, or a row's cells run one after another in one app (all pass or all fail)."""
    return [(str(mark.args[0]), str(mark.args[1])) for mark in item.iter_markers("fault")]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for cell in getattr(report, "fault_cells", ()):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            previous = _OUTCOMES.get(cell)
            outcome = "passed" if report.outcome == "passed" else report.outcome
            _OUTCOMES[cell] = outcome if previous in (None, "passed") else previous


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    report.fault_cells = cells_of(item)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    wanted = cells()
    if not wanted or any(cell not in _OUTCOMES for cell in wanted):
        return
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(render(_OUTCOMES), encoding="utf-8")


def render(outcomes: dict[tuple[str, str], str]) -> str:
    """docs/faults.md: the matrix with each cell's outcome, then what each cell expects."""
    faults = [f for f in FAULTS if any(not MATRIX[s][f].startswith("n/a") for s in MATRIX)]
    glyph = {"passed": "✓", "failed": "✗", "skipped": "skipped"}
    lines = [
        "# Fault matrix",
        "",
        "Each source (or part of one) run against its real lab backend under each fault. Every cell checks the same four",
        "things: the UI stays up and answers keys, the header names what failed and why, the last good data stays on",
        "screen marked with its age, and the source recovers by itself when the fault ends. Written by the test run",
        "(`tests/faults`); the data is `tests/faults/matrix.py`. `·` = does not apply (the reason is listed below).",
        "",
        "| source | " + " | ".join(faults) + " |",
        "|---|" + "---|" * len(faults),
    ]
    for source, row in MATRIX.items():
        marks = []
        for fault in faults:
            marks.append("·" if row[fault].startswith("n/a") else glyph.get(outcomes.get((source, fault), ""), "?"))
        lines.append(f"| {source} | " + " | ".join(marks) + " |")
    lines += ["", "## Faults", ""] + [f"- **{f}**: {how}" for f, how in FAULTS.items()]
    lines += ["", "## What each cell expects", ""]
    for source, row in MATRIX.items():
        lines.append(f"### {source}")
        lines.append("")
        for fault, expected in row.items():
            lines.append(f"- {fault}: {expected}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
