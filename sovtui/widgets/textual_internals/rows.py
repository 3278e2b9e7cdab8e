"""Provides OneLineRows: a DataTable whose rows are replaced at once and laid out and measured as one-line rows."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.render import measure
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import Column, DuplicateKey, Row, RowKey

from ..cells import CACHE_LIMIT


class StrRowKey(RowKey, str):
    """A DataTable row key that is also the str it wraps, so that dicts hash and compare it at C speed."""

    __hash__ = str.__hash__
    __eq__ = str.__eq__

    def __new__(cls, value: str) -> StrRowKey:
        return str.__new__(cls, value)


def _two_way(row_keys: list[RowKey]) -> TwoWayDict:
    """DataTable's row locations (key <-> index) for keys in display order, built at C speed."""
    locations = TwoWayDict({})
    locations._forward = dict(zip(row_keys, range(len(row_keys)), strict=True))
    locations._reverse = dict(enumerate(row_keys))
    return locations


class OneLineRows(DataTable):
    """A DataTable that lays out and measures one-line rows without walking every row.

    ``_put_rows`` and ``_size_rows`` replace all rows at once, as ``clear()`` and one
    ``add_row`` per row would; ``_cells_written`` marks cells written into the row dicts.
    """

    #: row order/membership generation (``_update_count`` also moves on every cell update)
    _layout_version = 0
    _row_layout: tuple | None = None
    #: every row is one line high and has no label (true while rows come only from ``_put_rows``)
    _simple_rows = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        #: keys whose current cells were not measured for column widths yet
        self._unmeasured: set[str] = set()
        self._str_widths: dict[str, int] = {}
        self._text_widths: dict[str, int] = {}

    # -- replacing all rows at once ----------------------------------------------------------
    def _reset_rows(self) -> None:
        """``clear()`` without columns, keeping DataTable's render caches.

        Their entries are keyed by ``_update_count``, which the new rows move on, so stale ones
        are never hit again and simply age out. Clearing them would instead leave every cached
        entry as garbage that only a full garbage collection can free (the caches are linked
        rings). ``clear()`` also walks every old row once more for nothing.
        """
        self._data = {}
        self.rows = {}
        self._row_locations = TwoWayDict({})
        self._require_update_dimensions = True
        self.cursor_coordinate = Coordinate(0, 0)
        self.hover_coordinate = Coordinate(0, 0)
        self._label_column = Column(self._label_column_key, Text(), auto_width=True)
        self._labelled_row_exists = False
        self._simple_rows = True
        self._layout_version += 1
        self.refresh()
        self.scroll_x = 0
        self.scroll_y = 0
        self.scroll_target_x = 0
        self.scroll_target_y = 0

    def _put_rows(
        self, keys: list[str], row_keys: list[RowKey], rows: list[Row], cells: list[dict], offsets: list
    ) -> None:
        """After ``_reset_rows``: these rows in display order, with their cell dicts and y-offset entries."""
        self.rows = dict(zip(row_keys, rows, strict=True))
        if len(self.rows) != len(keys):
            seen: set[str] = set()
            duplicate = next(key for key in keys if key in seen or seen.add(key))
            raise DuplicateKey(f"The row key {duplicate!r} already exists.")
        self._data = dict(zip(row_keys, cells, strict=True))
        self._row_locations = _two_way(row_keys)
        self._layout_version += 1
        self._row_layout = ((self._layout_version, len(keys)), rows, offsets)
        self._update_count += 1

    def _size_rows(self, unmeasured: list[RowKey], also: list[dict]) -> None:
        """Size the table now rather than when idle, measuring these rows and cell dicts.

        The cursor is then scrolled into view before the next paint instead of after it (one
        paint where DataTable makes two).
        """
        self._widen(also)
        self._require_update_dimensions = False
        self._new_rows = set()
        self._update_dimensions(unmeasured)
        if self.rows and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as the first add_row does
        self.check_idle()

    def _cells_written(self) -> None:
        """Cells were written into the rows' dicts in place, as ``update_cell(update_width=False)`` does."""
        self._update_count += 1
        self.refresh()

    # -- DataTable paths that other callers may still take -----------------------------------
    def clear(self, columns: bool = False):
        super().clear(columns)
        self._unmeasured = set()
        self._simple_rows = True
        self._layout_version += 1
        return self

    def add_row(self, *cells, height: int | None = 1, key: str | None = None, label=None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        if height != 1 or label is not None:
            self._simple_rows = False
        self._layout_version += 1
        return row_key

    def remove_row(self, row_key) -> None:
        super().remove_row(row_key)
        self._layout_version += 1

    def sort(self, *columns, key=None, reverse: bool = False):
        super().sort(*columns, key=key, reverse=reverse)
        self._layout_version += 1
        return self

    # -- layout and column widths for one-line rows -------------------------------------------
    @property
    def ordered_rows(self) -> list[Row]:
        """The rows in display order, kept until the order or membership changes."""
        if not self._simple_rows:
            return super().ordered_rows
        return self._rows_in_order()[0]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        if not self._simple_rows:
            return super()._y_offsets
        return self._rows_in_order()[1]

    def _rows_in_order(self) -> tuple[list[Row], list[tuple[RowKey, int]]]:
        stamp = (self._layout_version, len(self.rows))
        cached = self._row_layout
        if cached is None or cached[0] != stamp:
            get_key = self._row_locations.get_key
            rows = self.rows
            ordered = [rows[get_key(index)] for index in range(len(rows))]
            cached = self._row_layout = (stamp, ordered, [(row.key, 0) for row in ordered])
        return cached[1], cached[2]

    def _get_row_region(self, row_index: int) -> Region:
        """DataTable's row region; with one-line rows a row's y is its index (no walk over the rows above)."""
        if not self._simple_rows or not self.is_valid_row_index(row_index):
            return super()._get_row_region(row_index)
        row_width = (
            sum(column.get_render_width(self) for column in self.columns.values()) + self._row_label_column_width
        )
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, row_width), 1)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Widen auto-width columns for ``new_rows``; fixed-width columns are not measured."""
        if not self._simple_rows:
            super()._update_dimensions(new_rows)
            return
        data = self._data
        rows = []
        for row_key in new_rows:
            row = data.get(row_key)
            if row is not None:  # not removed again before the table was idle
                rows.append(row)
                self._unmeasured.discard(row_key.value)
        self._widen(rows)
        data_cells_width = sum(column.get_render_width(self) for column in self.columns.values())
        header_height = self.header_height if self.show_header else 0
        self._set_virtual_size(
            Size(data_cells_width + self._row_label_column_width, self._total_row_height + header_height)
        )

    def _set_virtual_size(self, size: Size) -> None:
        """Set ``virtual_size``; when only the row count changed, without a layout of the whole screen.

        ``virtual_size`` is a layout reactive: every change reflows the screen, which is most of
        the cost of a filter keystroke. While the table's own size does not follow its content
        (its height is not ``auto``), a new row count changes only what is scrolled and the
        scrollbars, which ``_scroll_update`` brings up to date as the layout would. Should a
        scrollbar appear or disappear, its own reactive still lays the screen out.
        """
        old = self.virtual_size
        height = self.styles.height
        if (
            size == old
            or size.width != old.width
            or height is None
            or height.is_auto
            or not self._size
            or not self.container_size
            or getattr(self, "_anchored", False)
        ):
            self.virtual_size = size
            return
        self.set_reactive(Widget.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def _scroll_update(self, virtual_size: Size) -> None:
        """Widget's, then the thumbs put where the scroll is: a scroll made before a scrollbar was
        shown (the cursor restored right after a sync) would otherwise leave its thumb at the top."""
        super()._scroll_update(virtual_size)
        if self.show_vertical_scrollbar and self.vertical_scrollbar.position != self.scroll_y:
            self.vertical_scrollbar.position = self.scroll_y
        if self.show_horizontal_scrollbar and self.horizontal_scrollbar.position != self.scroll_x:
            self.horizontal_scrollbar.position = self.scroll_x

    def _widen(self, rows: Iterable[dict]) -> None:
        """Widen the auto-width columns to fit these cell dicts (a column never narrows)."""
        auto = [column for column in self.ordered_columns if column.auto_width]
        widest = [column.content_width for column in auto]
        for row in rows:
            for i, column in enumerate(auto):
                width = self._cell_width(row.get(column.key))
                if width > widest[i]:
                    widest[i] = width
        for column, width in zip(auto, widest, strict=True):
            column.content_width = width

    def _cell_width(self, value: object) -> int:
        """The width DataTable measures for a one-line cell holding ``value``."""
        if value is None:
            return 0
        if isinstance(value, str):
            cache, text = self._str_widths, value
        elif type(value) is Text:
            cache, text = self._text_widths, value.plain
        else:
            return self._measure(value)
        width = cache.get(text)
        if width is None:
            if len(cache) > CACHE_LIMIT:
                cache.clear()
            width = cache[text] = self._measure(value)
        return width

    def _measure(self, value: object) -> int:
        renderable = default_cell_formatter(value, wrap=False, height=1)
        return measure(self.app.console, renderable, 1) if renderable else 0
