"""Provides OneLineTable: a DataTable whose rows come from OneLineRows, drawn by fast paths for one-line cells."""

from __future__ import annotations

from itertools import chain

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets._data_table import _EMPTY_TEXT, RowRenderables, default_cell_formatter
from textual.widgets.data_table import RowKey

from ..cells import CACHE_LIMIT, CellStyles, Runs, cell_segments, cell_styles, text_runs
from .rows import OneLineRows


class OneLineTable(OneLineRows):
    """OneLineRows that render their lines and cells without DataTable's per-cell general machinery.

    The same cells, cursor and hover highlighting and the same filler to the right edge as
    DataTable draws; anything else (labels, fixed rows or columns, taller rows or header,
    wrapping) goes through DataTable's own rendering.
    """

    #: inside ``render_lines``, and what its lines share (see ``render_line``)
    _line_pass = False
    _line_setup: tuple | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        #: what DataTable's formatter makes of a str cell (a Text is never modified once made)
        self._str_texts: dict[str, Text] = {}
        #: per cell (by identity, kept alive) and width: its styled runs of text as rich renders it, and their width
        self._shapes: dict[tuple[int, int], tuple[object, Runs | None, int]] = {}
        self._row_memo: tuple = (None, [])
        #: per place of a cell and DataTable's styles for its state: what goes before and after its content
        self._cell_styles: dict[tuple, CellStyles] = {}

    def _clear_caches(self) -> None:
        self._unlink_caches()
        self._row_memo = (None, [])
        super()._clear_caches()

    def notify_style_update(self) -> None:
        self._unlink_caches()  # focus changes land here
        super().notify_style_update()

    def _unlink_caches(self) -> None:
        """Break the rings of DataTable's LRU caches before they are cleared.

        An LRU cache links its entries in a ring; clearing it drops the ring whole, which
        leaves every entry (rendered cells and lines, tens of thousands of objects) as garbage
        that only a full garbage collection frees.
        """
        for cache in (self._row_render_cache, self._cell_render_cache, self._row_renderable_cache, self._line_cache):
            links = getattr(cache, "_cache", None)
            if isinstance(links, dict):
                for link in links.values():
                    if isinstance(link, list):
                        link.clear()

    def _compute_row_renderables(self, row_index: int) -> RowRenderables:
        """DataTable's formatted cells of a row, formatting each distinct str only once."""
        if row_index < 0 or not self._simple_rows:
            return super()._compute_row_renderables(row_index)
        row_key = self._row_locations.get_key(row_index)
        row = self._data.get(row_key) if row_key is not None else None
        if row is None:
            return RowRenderables(None, [])
        texts = self._str_texts
        cells = []
        for column in self.ordered_columns:
            value = row.get(column.key)
            if value is None:
                cells.append(_EMPTY_TEXT)
            elif isinstance(value, str):
                text = texts.get(value)
                if text is None:
                    if len(texts) > CACHE_LIMIT:
                        texts.clear()
                    text = texts[value] = default_cell_formatter(value, wrap=False, height=1) or _EMPTY_TEXT
                cells.append(text)
            else:
                cells.append(default_cell_formatter(value, wrap=False, height=1) or _EMPTY_TEXT)
        return RowRenderables(None, cells)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._line_pass = True  # what every line of this pass shares is worked out by its first line
        try:
            return super().render_lines(crop)
        finally:
            self._line_pass = False
            self._line_setup = None

    def render_line(self, y: int) -> Strip:
        """DataTable's line ``y``, with what every line of a pass shares worked out once per pass."""
        setup = self._line_setup
        if setup is None:
            if not self._simple_rows or getattr(self, "_reactive_fixed_rows", 0):
                return super().render_line(y)
            width, _ = self.size
            scroll_x, scroll_y = self.scroll_offset
            fixed_height = self.header_height if self.show_header else 0  # the header row
            setup = (width, scroll_x, scroll_y, fixed_height, self.rich_style)
            if self._line_pass:
                self._line_setup = setup
        width, scroll_x, scroll_y, fixed_height, base_style = setup
        if y >= fixed_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + width, base_style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """DataTable's ``_render_line`` for tables without fixed columns or row labels."""
        if not self._simple_rows or self._labelled_row_exists or getattr(self, "_reactive_fixed_columns", 0):
            return super()._render_line(y, x1, x2, base_style)
        width = self.size.width
        try:
            row_key, y_offset_in_row = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        cursor, hover = self.cursor_coordinate, self.hover_coordinate
        cache_key = (
            y,
            x1,
            x2,
            width,
            cursor,
            hover,
            base_style,
            self.cursor_type,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._line_cache.get(cache_key)
        if cached is not None:
            return cached
        _, scrollable = self._render_line_in_row(
            row_key, y_offset_in_row, base_style, cursor_location=cursor, hover_location=hover
        )
        segments = line_crop(list(chain.from_iterable(scrollable)), x1, x2, width)
        strip = Strip(segments).adjust_cell_length(width, base_style).simplify()
        self._line_cache[cache_key] = strip
        return strip

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[list, list]:
        """DataTable's line of a row, for tables without row labels or fixed columns.

        The same cells, cursor and hover highlighting and the same filler to the right edge,
        computing the column widths and highlight flags once per line instead of per cell.
        """
        if not self._simple_rows or self._labelled_row_exists or getattr(self, "_reactive_fixed_columns", 0):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        cursor_type = self.cursor_type
        show_cursor = self.show_cursor
        cache_key = (
            row_key,
            line_no,
            base_style,
            cursor_location,
            hover_location,
            cursor_type,
            show_cursor,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        row_index = self._row_locations.get(row_key)
        if row_index is None:
            row_index = -1
        row_style = self._get_row_style(row_index, base_style)
        padding = 2 * self.cell_padding
        widths = [
            padding + (column.content_width if column.auto_width else column.width) for column in self.ordered_columns
        ]
        cursor_row, cursor_column = cursor_location
        hover_row, hover_column = hover_location
        render_cell = self._render_cell
        scrollable_row = []
        for column_index, width in enumerate(widths):
            if cursor_type == "row":  # DataTable._should_highlight
                cursor, hover = cursor_row == row_index, hover_row == row_index
            elif cursor_type == "cell":
                cursor = cursor_row == row_index and cursor_column == column_index
                hover = hover_row == row_index and hover_column == column_index
            elif cursor_type == "column":
                cursor, hover = cursor_column == column_index, hover_column == column_index
            else:
                cursor = hover = False
            scrollable_row.append(
                render_cell(row_index, column_index, row_style, width, cursor=cursor, hover=hover)[line_no]
            )
        remaining_space = max(0, self.size.width - sum(widths))
        if cursor_type == "row":
            extend_style, _ = self._get_styles_to_render_cell(
                row_index == -1,
                False,
                False,
                hover_row == (row_index or 0),
                row_index == cursor_row,
                show_cursor,
                self._show_hover_cursor,
                False,
                False,
            )
            extend_style = row_style + extend_style
        elif row_style.bgcolor is not None:
            faded_color = Color.from_rich_color(row_style.bgcolor).blend(self.background_colors[1], factor=0.25)
            extend_style = Style.from_color(color=row_style.color, bgcolor=faded_color.rich_color)
        else:
            extend_style = Style.from_color(row_style.color, row_style.bgcolor)
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        scrollable_row.append([Segment(" " * remaining_space, extend_style)])
        row_pair = ([], scrollable_row)
        self._row_render_cache[cache_key] = row_pair
        return row_pair

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """DataTable's cell rendering, without rich's general layout machinery for one-line text.

        A one-line Text that fits its column renders to: padding, the text's styled runs, spaces
        to the column width, padding; each with the cell's base and component styles applied
        before and the CSS-priority style after, exactly as ``Styled(Padding(cell))`` yields
        them. Anything else (wrapping, justification, tabs, cropping, labels, fixed rows or
        columns, a taller header) goes through DataTable's own rendering.
        """
        header = row_index == -1
        if (
            column_index < 0
            or row_index < -1
            or not self._simple_rows
            or getattr(self, "_reactive_fixed_rows", 0)
            or getattr(self, "_reactive_fixed_columns", 0)
            or (header and getattr(self, "_reactive_header_height", 1) != 1)
        ):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._header_row_key if header else self._row_locations.get_key(row_index)
        pseudo_classes = self._pseudo_class_state
        show_hover_cursor = self._show_hover_cursor
        cache_key = (
            row_key,
            self._column_locations.get_key(column_index),
            base_style,
            cursor,
            hover,
            show_hover_cursor,
            self._update_count,
            pseudo_classes,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        # the row's formatted cells, kept for the other cells of the same line
        memo = self._row_memo
        if memo[0] != (self._update_count, row_index):
            memo = self._row_memo = ((self._update_count, row_index), self._get_row_renderables(row_index).cells)
        cell = memo[1][column_index]
        padding = getattr(self, "_reactive_cell_padding", 1)
        inner = width - 2 * padding
        if inner < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        shape = self._shapes.get((id(cell), inner))
        if shape is None or shape[0] is not cell:
            shape = self._shape(cell, inner)
        _, runs, used = shape
        if runs is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        # DataTable's styles for the cell's state (cached by DataTable until its CSS changes) and
        # what they make at this place: determined by the key, so kept across focus and CSS changes
        component_style, post = self._get_styles_to_render_cell(
            header,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        style_key = (base_style, row_index, column_index, component_style, post)
        styles = self._cell_styles.get(style_key)
        if styles is None:
            styles = self._styles_for_cell(style_key)
        segments = cell_segments(runs, used, inner, padding, styles)
        lines = [segments]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _shape(self, cell: object, width: int) -> tuple[object, Runs | None, int]:
        """A cell's styled runs of text ``width`` cells wide and their width, kept per cell and width."""
        if len(self._shapes) > CACHE_LIMIT:
            self._shapes.clear()
        runs, used = text_runs(cell, width, self.app.console, self.app.console_options.overflow)
        shape = self._shapes[(id(cell), width)] = (cell, runs, used)
        return shape

    def _styles_for_cell(self, style_key: tuple) -> CellStyles:
        """The styles DataTable applies to a cell at this place, kept per place and state."""
        if len(self._cell_styles) > CACHE_LIMIT:
            self._cell_styles.clear()
        styles = self._cell_styles[style_key] = cell_styles(*style_key)
        return styles
