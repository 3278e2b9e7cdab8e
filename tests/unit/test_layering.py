"""Provides architecture checks: no Textual below the UI layer, and a docstring atop every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sovtui"

#: everything that must run without Textual: sources → hub → model, plus ops, demo and config
UI_FREE = ["sources", "model", "ops", "demo", "hub.py", "config.py"]


def modules(*roots: str) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        path = PACKAGE / root
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob("*.py")))
    return found


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an ``import``/``from ... import`` anywhere in the tree names (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call):
            # importlib.import_module("textual") / __import__("textual")
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in {"import_module", "__import__"} and node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", modules(*UI_FREE), ids=rel)
def test_no_textual_below_the_ui(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = sorted(n for n in imported_modules(tree) if n == "textual" or n.startswith("textual."))
    assert not bad, f"{rel(path)} imports {', '.join(bad)}; only sovtui/app.py, screens and widgets may use Textual"


@pytest.mark.parametrize("path", modules("."), ids=rel)
def test_every_module_has_a_one_line_docstring(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    doc = ast.get_docstring(tree, clean=False)
    assert doc, f"{rel(path)} has no module docstring"
    first = doc.splitlines()[0].strip()
    assert first, f"{rel(path)}: the docstring's first line is empty"
    assert first.startswith("Provides "), f"{rel(path)}: the docstring should open with 'Provides …', not {first!r}"


def test_the_checks_see_the_package():
    """Guard against a path mistake that would make the checks above vacuous."""
    assert (PACKAGE / "hub.py").is_file()
    assert len(modules(*UI_FREE)) >= 8
    assert PACKAGE / "cli.py" in modules(".")


def test_detector_finds_nested_and_dynamic_imports():
    src = "def f():\n    from textual.app import App\n    import importlib\n    importlib.import_module('textual.widgets')\n"
    assert {"textual.app", "textual.widgets"} <= imported_modules(ast.parse(src))
