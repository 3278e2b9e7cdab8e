"""Provides tests that the private Textual names the table fast paths rely on are still there, and still used.

A Textual upgrade that removes or renames one fails here, naming the missing piece, instead of
quietly drawing wrong or falling back to the slow path.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections import Counter
from pathlib import Path

import pytest
import textual
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Input

pytestmark = pytest.mark.ui

WIDGETS = Path(__file__).resolve().parents[2] / "sovtui" / "widgets"
INTERNALS = WIDGETS / "textual_internals"
VERSION = f"Textual {textual.__version__}"

#: names imported from Textual's private modules
PRIVATE_IMPORTS = {
    "textual._segment_tools": ("line_crop",),
    "textual._two_way_dict": ("TwoWayDict",),
    "textual.widgets._data_table": ("_EMPTY_TEXT", "RowRenderables", "default_cell_formatter"),
}
#: DataTable state read or written (instance attributes of a mounted table)
DATA_TABLE_STATE = (
    "_data",
    "_row_locations",
    "_column_locations",
    "_update_count",
    "_require_update_dimensions",
    "_new_rows",
    "_label_column",
    "_label_column_key",
    "_labelled_row_exists",
    "_header_row_key",
    "_row_render_cache",
    "_cell_render_cache",
    "_row_renderable_cache",
    "_line_cache",
    "_show_hover_cursor",
    "_pseudo_class_state",
    "_row_label_column_width",
    "_total_row_height",
)
#: reactive storage read without the descriptor, and its reactive
REACTIVE_STORAGE = {
    "_reactive_fixed_rows": "fixed_rows",
    "_reactive_fixed_columns": "fixed_columns",
    "_reactive_header_height": "header_height",
    "_reactive_cell_padding": "cell_padding",
}
DATA_TABLE_CALLED = (
    "_highlight_cursor",
    "_get_offsets",
    "_get_row_style",
    "_get_styles_to_render_cell",
    "_get_row_renderables",
)
DATA_TABLE_OVERRIDDEN = (
    "_y_offsets",
    "_get_row_region",
    "_update_dimensions",
    "_clear_caches",
    "_compute_row_renderables",
    "_render_line",
    "_render_line_in_row",
    "_render_cell",
)
WIDGET_STATE = ("_size", "_anchored")
WIDGET_OVERRIDDEN = ("_scroll_update",)
#: private attributes of other Textual objects: TwoWayDict's two dicts, LRUCache's ring
OTHER_STATE = ("_forward", "_reverse", "_cache")

LISTED = {
    *DATA_TABLE_STATE,
    *REACTIVE_STORAGE,
    *DATA_TABLE_CALLED,
    *DATA_TABLE_OVERRIDDEN,
    *WIDGET_STATE,
    *WIDGET_OVERRIDDEN,
    *OTHER_STATE,
    *(f"{module}.{name}" for module, names in PRIVATE_IMPORTS.items() for name in names),
}


class Tables(App):
    CSS = "DataTable { height: 12; }"

    def __init__(self, table: DataTable) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table
        yield DataTable(id="plain", cursor_type="row")
        yield Input(id="elsewhere")  # focused, so that both tables draw unfocused


def _fail_if(missing: list[str]) -> None:
    if missing:
        pytest.fail(f"{VERSION} no longer has what sovtui/widgets/textual_internals relies on: " + "; ".join(missing))


# ---------------------------------------------------------------------------------------------
# the names are there


def test_private_modules_still_provide_the_names():
    missing = []
    for module_name, names in PRIVATE_IMPORTS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"module {module_name}")
            continue
        missing += [f"{module_name}.{name}" for name in names if not hasattr(module, name)]
    _fail_if(missing)


def test_data_table_still_has_the_state_and_methods():
    from sovtui.widgets.textual_internals import OneLineTable

    table = DataTable()
    missing = [f"DataTable().{name}" for name in DATA_TABLE_STATE if not hasattr(table, name)]
    missing += [f"Widget().{name}" for name in WIDGET_STATE if not hasattr(table, name)]
    for storage, name in REACTIVE_STORAGE.items():
        if getattr(getattr(DataTable, name, None), "internal_name", None) != storage or not hasattr(table, storage):
            missing.append(f"DataTable.{name} kept in {storage}")
    missing += [f"DataTable.{name}()" for name in DATA_TABLE_CALLED if not callable(getattr(DataTable, name, None))]
    for owner, names in ((DataTable, DATA_TABLE_OVERRIDDEN), (Widget, WIDGET_OVERRIDDEN)):
        for name in names:
            theirs, ours = inspect.getattr_static(owner, name, None), inspect.getattr_static(OneLineTable, name)
            if theirs is None:
                missing.append(f"{owner.__name__}.{name} (overridden)")
            elif isinstance(ours, property) is not isinstance(theirs, property):
                missing.append(f"{owner.__name__}.{name} as a {'property' if isinstance(ours, property) else 'method'}")
            elif not isinstance(ours, property) and list(inspect.signature(theirs).parameters) != list(
                inspect.signature(ours).parameters
            ):
                missing.append(f"{owner.__name__}.{name}{inspect.signature(ours)} (now {inspect.signature(theirs)})")
    if not isinstance(getattr(table._row_render_cache, "_cache", None), dict):
        missing.append("LRUCache._cache (a dict of ring links)")
    _fail_if(missing)


def test_two_way_dict_and_row_keys_still_work_as_relied_on():
    from textual._two_way_dict import TwoWayDict
    from textual.widgets.data_table import RowKey

    from sovtui.widgets.textual_internals import StrRowKey
    from sovtui.widgets.textual_internals.rows import _two_way

    missing = [f"TwoWayDict.{name}" for name in ("_forward", "_reverse") if not hasattr(TwoWayDict({}), name)]
    _fail_if(missing)
    keys = [StrRowKey("a"), StrRowKey("b")]
    locations = _two_way(keys)
    assert (locations.get(keys[1]), locations.get_key(0)) == (1, keys[0]), "TwoWayDict reads its _forward/_reverse"
    assert keys[0].value == "a" and isinstance(keys[0], RowKey), "StringKey.__init__ sets .value"
    plain = RowKey("a")
    assert hash(plain) == hash(keys[0]) and plain == keys[0] and keys[0] == plain, "StringKey hashes as its value"
    assert {keys[0]: 1}[plain] == 1 and {plain: 1}[keys[0]] == 1


def _names(path: Path) -> tuple[set[str], set[str]]:
    """The private names a file uses and the ones it introduces itself.

    Used: ``x._name`` attributes, ``getattr(x, "_name")`` strings, names imported from a private
    module (as ``module.name``). Introduced: functions, class attributes and what ``__init__``
    sets on ``self``.
    """
    tree = ast.parse(path.read_text())
    used: set[str] = set()
    introduced: set[str] = set()

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__") and name != "_"

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            used.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) > 1:
            if isinstance(node.args[1], ast.Constant) and private(str(node.args[1].value)):
                used.add(str(node.args[1].value))
        elif isinstance(node, ast.ImportFrom) and any(map(private, (node.module or "").split("."))):
            used |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and private(node.name):
            introduced.add(node.name)
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
                )
                introduced |= {t.id for t in targets if isinstance(t, ast.Name) and private(t.id)}
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            for inner in ast.walk(node):
                targets = inner.targets if isinstance(inner, ast.Assign) else [getattr(inner, "target", None)]
                introduced |= {t.attr for t in targets if isinstance(t, ast.Attribute) and private(t.attr)}
    return used, introduced


def test_every_private_textual_name_used_is_listed_and_only_there():
    """The lists above and the package docstring name every private Textual name the table code uses."""
    internals = [_names(path) for path in sorted(INTERNALS.glob("*.py"))]
    used = set().union(*(u for u, _ in internals))
    ours = set().union(*(i for _, i in internals))
    overridden = set(DATA_TABLE_OVERRIDDEN) | set(WIDGET_OVERRIDDEN)
    assert (used | ours) - ours - LISTED == set(), "private Textual names used but not listed"
    assert ours & LISTED == overridden, "the overridden Textual names are exactly the listed ones"
    table = DataTable()
    clashes = {name for name in ours - overridden if hasattr(table, name) or hasattr(DataTable, name)}
    assert clashes == set(), f"{VERSION} now has names of its own that the table code introduces"
    docstring = ast.get_docstring(ast.parse((INTERNALS / "__init__.py").read_text())) or ""
    named = set(re.findall(r"\w+", docstring))
    unlisted = {name.rsplit(".", 1)[-1] for name in LISTED} - named
    assert unlisted == set(), "the package docstring names every private name relied on"
    for path in (WIDGETS / "synctable.py", WIDGETS / "cells.py"):
        outside, _ = _names(path)
        assert outside & LISTED == set() and outside - ours - _names(path)[1] == set(), (
            f"{path.name} uses no Textual private"
        )


# ---------------------------------------------------------------------------------------------
# Textual still goes through the overrides, and the fast paths run


def _spied():
    from sovtui.widgets.synctable import SyncTable

    class Spied(SyncTable):
        """A SyncTable that counts the calls into each override."""

        calls: Counter

        def __init__(self, *args, **kwargs) -> None:
            self.calls = Counter()
            super().__init__(*args, **kwargs)

        @property
        def _y_offsets(self):
            self.calls["_y_offsets"] += 1
            return super()._y_offsets

    for name in set(DATA_TABLE_OVERRIDDEN) - {"_y_offsets"} | set(WIDGET_OVERRIDDEN) | {"render_line"}:

        def spy(self, *args, _name=name, **kwargs):
            self.calls[_name] += 1
            return getattr(super(Spied, self), _name)(*args, **kwargs)

        setattr(Spied, name, spy)
    return Spied


async def test_textual_still_calls_every_override():
    Spied = _spied()
    table = Spied([("a", "A", 6), ("b", "B", None)], id="spied")
    app = Tables(table)
    async with app.run_test(size=(80, 20)) as pilot:
        table.sync([(f"k{i}", (f"a{i}", f"cell {i}")) for i in range(30)])
        await pilot.pause()
        reached: dict[str, object] = {
            "render_line": lambda: table.render_lines(table.region.reset_offset),
            "_render_line": lambda: DataTable.render_line(table, 2),
            "_render_line_in_row": lambda: DataTable._render_line(table, 2, 0, 40, table.rich_style),
            "_render_cell": lambda: DataTable._render_line_in_row(
                table,
                table._row_locations.get_key(3),
                0,
                table.rich_style,
                table.cursor_coordinate,
                table.hover_coordinate,
            ),
            "_compute_row_renderables": lambda: DataTable._get_row_renderables(table, 4),
            "_y_offsets": lambda: DataTable._get_offsets(table, 5),
            "_get_row_region": lambda: table.move_cursor(row=25, animate=False),
            "_clear_caches": lambda: table.clear(),
            "_update_dimensions": lambda: table.add_row("x", "y", key="plain"),
        }
        missing = []
        for name, trigger in reached.items():
            table._clear_caches()
            table.calls.clear()
            trigger()
            await pilot.pause()
            if not table.calls[name]:
                missing.append(f"DataTable no longer calls {name}")
        table.calls.clear()
        await pilot.resize_terminal(100, 24)
        await pilot.pause()
        if not table.calls["_scroll_update"]:
            missing.append("Widget no longer calls _scroll_update")
    _fail_if(missing)


async def test_the_fast_paths_run_and_draw_what_a_datatable_draws():
    from rich.text import Text

    from sovtui.widgets.synctable import SyncTable

    columns = [("a", "A", 6), ("b", "B", None)]
    rows = [(f"k{i}", (Text(f"t{i}", style="bold"), f"cell {i}" * (i % 3))) for i in range(20)]
    table = SyncTable(columns, id="sync")
    app = Tables(table)
    async with app.run_test(size=(80, 20)) as pilot:
        plain = app.query_one("#plain", DataTable)
        app.query_one(Input).focus()
        for key, label, width in columns:
            plain.add_column(label, key=key, width=width)
        table.sync(rows)
        for key, cells in rows:
            plain.add_row(*cells, key=key)
        await pilot.pause()
        assert table._simple_rows and table._row_layout is not None
        for y in range(table.size.height):
            assert list(table.render_line(y)) == list(plain.render_line(y)), y
        assert table._shapes and table._cell_styles and table._str_texts, "the one-line cell path drew the cells"
