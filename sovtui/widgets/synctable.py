"""Provides a DataTable that is synced from keyed rows, updating only the cells that changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, compress
from operator import is_not, itemgetter

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.render import measure
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets._data_table import (
    _EMPTY_TEXT,
    Column,
    DuplicateKey,
    Row,
    RowKey,
    RowRenderables,
    default_cell_formatter,
)


class _RowKey(RowKey, str):
    """A DataTable row key that is also the str it wraps, so that dicts hash and compare it at C speed."""

    __hash__ = str.__hash__
    __eq__ = str.__eq__

    def __new__(cls, value: str) -> _RowKey:
        return str.__new__(cls, value)


# a key's entry: [DataTable row key, row metadata, cells, cell dict, y-offset entry, cells before, their dict]
_ROW_KEY, _ROW, _CELLS, _CELL_DICT, _OFFSET = (itemgetter(i) for i in range(5))
_KEY, _ROW_CELLS = itemgetter(0), itemgetter(1)

#: entries are kept for keys not shown (filtered out, folded) until this many more pile up
_FORGET_AFTER = 20_000
#: measured widths and formatted texts kept per distinct cell text; dropped wholesale past this many
_CACHE_LIMIT = 50_000
#: what rich joins a text's lines with before rendering them
_NEWLINE = Text("\n")


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


def _two_way(row_keys: list[RowKey]) -> TwoWayDict:
    """DataTable's row locations (key <-> index) for keys in display order, built at C speed."""
    locations = TwoWayDict({})
    locations._forward = dict(zip(row_keys, range(len(row_keys)), strict=True))
    locations._reverse = dict(enumerate(row_keys))
    return locations


class SyncTable(DataTable):
    """``sync(rows)`` with ``rows = [(key, cells), ...]`` keeps the table equal to ``rows``.

    When the keys and their order are unchanged (the steady refresh), only changed cells are
    written, without recomputing column widths; a row whose cells are the very same tuple as
    last time is skipped without looking inside. When membership or order changes (a filter,
    a sort, a fold), the rows are replaced in one pass instead of row by row: each key keeps
    its row objects, and its cell dict while its cells are the same tuple, and only cells
    never measured are measured for the auto-width columns (a fixed-width column's content
    width is never used; a column only ever widens).

    The result is what DataTable's own ``clear()``, ``add_row()`` and ``update_cell()`` would
    leave, drawn the same, cell for cell; only the work to get there is less. The overrides
    of DataTable internals apply while every row is one line high without a label (always,
    when rows come from ``sync``); otherwise DataTable's own code runs.
    """

    #: row order/membership generation (``_update_count`` also moves on every cell update)
    _layout_version = 0
    _row_layout: tuple | None = None
    #: every row is one line high and has no label (true while all rows come from ``sync``)
    _simple_rows = True
    #: inside ``render_lines``, and what its lines share (see ``render_line``)
    _line_pass = False
    _line_setup: tuple | None = None

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._keys: list[str] = []
        self._entries: dict[str, list] = {}
        #: keys whose current cells were not measured for column widths yet
        self._unmeasured: set[str] = set()
        self._str_widths: dict[str, int] = {}
        self._text_widths: dict[str, int] = {}
        #: what DataTable's formatter makes of a str cell (a Text is never modified once made)
        self._str_texts: dict[str, Text] = {}
        #: per cell (by identity, kept alive) and width: its styled runs of text as rich renders it, and their width
        self._shapes: dict[tuple[int, int], tuple[object, list[tuple[str, Style | None]] | None, int]] = {}
        self._row_memo: tuple = (None, [])
        #: per place of a cell and DataTable's styles for its state: what goes before and after its content
        self._cell_styles: dict[tuple, tuple[Style, Style, Style | None, Style | None]] = {}

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
            self._update_count += 1
            self.refresh()
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
                    row_key = _RowKey(keys[index])
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
        row_keys = list(map(_ROW_KEY, entries))
        ordered = list(map(_ROW, entries))
        self.rows = dict(zip(row_keys, ordered, strict=True))
        if len(self.rows) != count:
            seen: set[str] = set()
            duplicate = next(key for key in keys if key in seen or seen.add(key))
            raise DuplicateKey(f"The row key {duplicate!r} already exists.")
        self._data = dict(zip(row_keys, map(_CELL_DICT, entries), strict=True))
        self._row_locations = _two_way(row_keys)
        self._keys = keys
        self._layout_version += 1
        self._row_layout = ((self._layout_version, count), ordered, list(map(_OFFSET, entries)))
        self._update_count += 1
        # size the table now rather than when idle, so that the cursor is scrolled into view
        # before the next paint instead of after it (one paint where DataTable makes two)
        unmeasured = [entries_by_key[key] for key in self._unmeasured if key in entries_by_key and key in self.rows]
        # the dict a row may alternate back to was current when it last changed: measure it too
        self._widen([entry[6] for entry in unmeasured if entry[6] is not None])
        self._require_update_dimensions = False
        self._new_rows = set()
        self._update_dimensions(list(map(_ROW_KEY, unmeasured)))
        if keys and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as the first add_row does
        self.check_idle()
        if selected is not None and selected in self.rows:
            self.move_cursor(row=keys.index(selected), animate=False)

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

    # -- DataTable paths that other callers may still take -----------------------------------
    def clear(self, columns: bool = False):
        super().clear(columns)
        self._keys = []
        self._entries = {}  # rows added from now on may not come from sync
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
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            width = cache[text] = self._measure(value)
        return width

    def _measure(self, value: object) -> int:
        renderable = default_cell_formatter(value, wrap=False, height=1)
        return measure(self.app.console, renderable, 1) if renderable else 0

    # -- rendering ---------------------------------------------------------------------------
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
                    if len(texts) > _CACHE_LIMIT:
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
        pre, post, edge, plain_style = styles
        segments = [Segment(" " * padding, edge)] if padding else []
        for text, style in runs:
            if style is None:
                segments.append(Segment(text, plain_style))
            else:
                if pre:  # Segment.apply_style(style=pre, post_style=post)
                    style = pre + style
                if post:
                    style = style + post if style else post
                segments.append(Segment(text, style))
        if used < inner:
            segments.append(Segment(" " * (inner - used), edge))
        if padding:
            segments.append(Segment(" " * padding, edge))
        lines = [segments]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _shape(self, cell: object, width: int) -> tuple[object, list[tuple[str, Style | None]] | None, int]:
        """A cell's styled runs of text as rich renders a one-line Text ``width`` cells wide, and their width.

        As ``Text.wrap`` does without wrapping: a text wider than the column is truncated per
        its overflow ("fold" and "crop" cut it, "ellipsis" ends it with "…"). ``None`` runs: not
        a Text drawn here (wrapping, justified, tabs, newlines, overflow "ignore").
        """
        if len(self._shapes) > _CACHE_LIMIT:
            self._shapes.clear()
        runs = None
        used = 0
        if type(cell) is Text and cell.no_wrap is not False and cell.justify in (None, "default"):
            plain = cell.plain
            overflow = cell.overflow or self.app.console_options.overflow or "fold"
            if "\n" not in plain and "\t" not in plain and overflow != "ignore":
                line = cell
                if cell_len(plain) > width:
                    line = cell.copy()
                    line.truncate(width, overflow=overflow)
                used = cell_len(line.plain)
                runs = [(text, style) for text, style, _ in _NEWLINE.join((line,)).render(self.app.console) if text]
        shape = self._shapes[(id(cell), width)] = (cell, runs, used)
        return shape

    def _styles_for_cell(self, style_key: tuple) -> tuple[Style, Style, Style | None, Style | None]:
        """The styles DataTable applies to a cell at this place: before, after, on padding, on plain text."""
        base_style, row_index, column_index, component_style, post = style_key
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style

        def applied(style: Style | None) -> Style | None:  # Segment.apply_style(style=pre, post_style=post)
            if pre:
                style = pre + style
            if post:
                style = style + post if style else post
            return style

        if len(self._cell_styles) > _CACHE_LIMIT:
            self._cell_styles.clear()
        # padding and fill are null-styled before styling; a text run without a style is None
        styles = self._cell_styles[style_key] = (pre, post, applied(Style.null()), applied(None))
        return styles
