"""Provides SyncTable: a table synced from keyed rows, updating only the cells that changed."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import is_not, itemgetter

from rich.text import Text
from textual.widgets.data_table import Row

from .textual_internals import OneLineTable, StrRowKey

# a key's entry: [DataTable row key, row metadata, cells, cell dict, y-offset entry, cells before, their dict]
_ROW_KEY, _ROW, _CELLS, _CELL_DICT, _OFFSET = (itemgetter(i) for i in range(5))
_KEY, _ROW_CELLS = itemgetter(0), itemgetter(1)

#: entries are kept for keys not shown (filtered out, folded) until this many more pile up
_FORGET_AFTER = 20_000


def _same(before: object, after: object) -> bool:
    """Whether a cell can stay as it is: the same object, or an equal one that draws the same.

    Two rich Texts compare equal on their characters and spans alone; a Text whose style,
    justification or overflow changed would draw differently, so those are compared too.
    """
    if before is after:
        return True
    if type(before) is not type(after) or before != after:
        return False
    if isinstance(before, Text):
        return (before.style, before.justify, before.overflow, before.no_wrap, before.end, before.tab_size) == (
            after.style,
            after.justify,
            after.overflow,
            after.no_wrap,
            after.end,
            after.tab_size,
        )
    return True


class SyncTable(OneLineTable):
    """``sync(rows)`` with ``rows = [(key, cells), ...]`` keeps the table equal to ``rows``.

    When the keys and their order are unchanged (the steady refresh), only changed cells are
    written, without recomputing column widths; a row whose cells are the very same tuple as
    last time is skipped without looking inside. When membership or order changes (a filter,
    a sort, a fold), the rows are replaced in one pass instead of row by row: each key keeps
    its row objects, and its cell dict while its cells are the same tuple, and only cells
    never measured are measured for the auto-width columns (a fixed-width column's content
    width is never used; a column only ever widens).

    The result is what DataTable's own ``clear()``, ``add_row()`` and ``update_cell()`` would
    leave, drawn the same, cell for cell; only the work to get there is less. Rows from
    ``sync`` are one line high without a label, which OneLineTable lays out and draws.
    """

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._keys: list[str] = []
        self._entries: dict[str, list] = {}

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
        for key, label, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    @property
    def row_keys_in_order(self) -> list[str]:
        return list(self._keys)

    def selected_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    # -- sync --------------------------------------------------------------------------------
    def sync(self, rows: Sequence[tuple[str, tuple]]) -> int:
        """Make the table show ``rows``; returns how many cells were written."""
        return self.sync_keyed(list(map(_KEY, rows)), list(map(_ROW_CELLS, rows)))

    def sync_keyed(self, keys: list[str], cells: list[tuple]) -> int:
        """``sync`` with the keys and the cells of the rows in two lists (kept by the table: do not change them)."""
        if keys == self._keys:
            return self._update_in_place(keys, cells)
        self._replace_rows(keys, cells)
        return sum(map(len, cells))

    def _update_in_place(self, keys: list[str], cells_of: list[tuple]) -> int:
        """Write the cells that differ, as ``update_cell(update_width=False)`` would, with one refresh."""
        columns = self.ordered_columns
        column_keys = [column.key for column in columns]
        auto = [column.auto_width for column in columns]
        entries = list(map(self._entries.__getitem__, keys))
        written = 0
        for index in compress(range(len(keys)), map(is_not, map(_CELLS, entries), cells_of)):
            entry, cells = entries[index], cells_of[index]
            if len(cells) != len(column_keys):
                raise ValueError(f"row {keys[index]!r} has {len(cells)} cells for {len(column_keys)} columns")
            row, old = entry[3], entry[2]
            for i in compress(range(len(cells)), map(is_not, old, cells)):  # other objects; equal ones stay
                if not _same(old[i], cells[i]):
                    row[column_keys[i]] = cells[i]
                    written += 1
                    if auto[i]:  # measured when the rows are next replaced, as DataTable would
                        self._unmeasured.add(keys[index])
            entry[2] = cells
        if written:
            self._cells_written()
        return written

    def _replace_rows(self, keys: list[str], cells_of: list[tuple]) -> None:
        """What ``clear()`` and one ``add_row`` per row do, in a few C-level passes."""
        selected = self.selected_key()
        self._reset_rows()
        column_keys = [column.key for column in self.ordered_columns]
        width = len(column_keys)
        count = len(keys)
        entries_by_key = self._entries
        if len(entries_by_key) > 2 * count + _FORGET_AFTER:  # keys that left for good
            self._entries = entries_by_key = {key: entries_by_key[key] for key in keys if key in entries_by_key}
        entries = list(map(entries_by_key.get, keys))
        if None in entries:
            for index, entry in enumerate(entries):
                if entry is None:
                    row_key = StrRowKey(keys[index])
                    entries[index] = entries_by_key[keys[index]] = [
                        row_key,
                        Row(row_key, 1),
                        None,
                        None,
                        (row_key, 0),
                        None,
                        None,
                    ]
        # the same tuple keeps its cell dict; so does the tuple before it (rows that alternate, like
        # a tree row that is its host's last or not); a new tuple gets a copy of the dict with the
        # cells that are other objects replaced. Only a changed auto-width cell needs measuring.
        auto = {i for i, column in enumerate(self.ordered_columns) if column.auto_width}
        for index in compress(range(count), map(is_not, map(_CELLS, entries), cells_of)):
            cells, entry = cells_of[index], entries[index]
            old = entry[2]
            if entry[5] is cells:
                entry[2], entry[3], entry[5], entry[6] = cells, entry[6], old, entry[3]
                continue
            if len(cells) > width:
                raise ValueError("More values provided than there are columns.")
            padded = cells if len(cells) == width else (*cells, *[None] * (width - len(cells)))
            if old is not None and len(old) == width:
                changed = list(compress(range(width), map(is_not, old, padded)))
                row = dict(entry[3])
                for i in changed:
                    row[column_keys[i]] = padded[i]
                if not auto.isdisjoint(changed):
                    self._unmeasured.add(keys[index])
            else:
                row = dict(zip(column_keys, padded, strict=True))
                self._unmeasured.add(keys[index])
            entry[2], entry[3], entry[5], entry[6] = cells, row, old, entry[3]
        self._put_rows(
            keys,
            list(map(_ROW_KEY, entries)),
            list(map(_ROW, entries)),
            list(map(_CELL_DICT, entries)),
            list(map(_OFFSET, entries)),
        )
        self._keys = keys
        unmeasured = [entries_by_key[key] for key in self._unmeasured if key in entries_by_key and key in self.rows]
        # the dict a row may alternate back to was current when it last changed: measure it too
        self._size_rows(list(map(_ROW_KEY, unmeasured)), [entry[6] for entry in unmeasured if entry[6] is not None])
        if selected is not None and selected in self.rows:
            self.move_cursor(row=keys.index(selected), animate=False)

    # -- DataTable paths that other callers may still take -----------------------------------
    def clear(self, columns: bool = False):
        super().clear(columns)
        self._keys = []
        self._entries = {}  # rows added from now on may not come from sync
        return self
