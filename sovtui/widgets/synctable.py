"""Provides a DataTable that is synced from keyed rows, updating only the cells that changed."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class SyncTable(DataTable):
    """``sync(rows)`` with ``rows = [(key, cells), ...]`` keeps the table equal to ``rows``.

    When the keys and their order are unchanged (the steady refresh), only changed cells are
    written, without recomputing column widths. Rows are rebuilt only when membership or
    order changes.
    """

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._keys: list[str] = []
        self._cells: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for key, label, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    @property
    def column_spec(self) -> list[tuple[str, str, int | None]]:
        return list(self._column_spec)

    def set_columns(self, columns: Sequence[tuple[str, str, int | None]]) -> None:
        """Replace the columns (e.g. when the terminal gets wider); the next sync refills the rows."""
        if list(columns) == self._column_spec:
            return
        self._column_spec = list(columns)
        self.clear(columns=True)
        self._keys = []
        self._cells = {}
        for key, label, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    @property
    def row_keys_in_order(self) -> list[str]:
        return list(self._keys)

    def selected_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def sync(self, rows: Sequence[tuple[str, tuple]]) -> int:
        """Make the table show ``rows``; returns how many cells were written."""
        keys = [key for key, _ in rows]
        columns = [c[0] for c in self._column_spec]
        if keys == self._keys:
            written = 0
            for key, cells in rows:
                old = self._cells.get(key)
                if old == cells:
                    continue
                for i, (column, value) in enumerate(zip(columns, cells, strict=True)):
                    if old is None or old[i] != value:
                        try:
                            self.update_cell(key, column, value, update_width=False)
                        except RowDoesNotExist:  # pragma: no cover - defensive
                            continue
                        written += 1
                self._cells[key] = cells
            return written
        selected = self.selected_key()
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._keys = keys
        self._cells = dict(rows)
        if selected in self._cells:
            self.move_cursor(row=keys.index(selected), animate=False)
        return sum(len(c) for _, c in rows)
