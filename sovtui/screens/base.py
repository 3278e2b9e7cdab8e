"""Provides the base screens: a site screen with header/footer, and a filterable, sortable table screen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, is_, is_not, itemgetter

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ..model.view import ClusterView
from ..widgets.header import SiteHeader
from ..widgets.synctable import SyncTable


class SiteScreen(Screen):
    """A screen of the site: header on top, footer with its keys, body from ``compose_body``.

    Screens never poll: the app calls :meth:`show_view` on the visible screen when the view
    changes and marks hidden ones dirty; a dirty screen re-renders when it is shown again.
    """

    #: the name used by ``:name`` and the number keys
    NAME = "screen"
    TITLE_TEXT = "Screen"
    #: one line for the help screen and command palette
    HELP = ""
    #: a widget that exists only once the whole body is mounted
    READY_SELECTOR = "SiteHeader"

    def __init__(self) -> None:
        super().__init__(name=self.NAME, id=f"screen-{self.NAME}")
        self.dirty = True
        self.view: ClusterView | None = None

    def compose(self) -> ComposeResult:
        yield SiteHeader(id="site-header")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        view = getattr(self.app, "view", None)
        if view is not None and (self.dirty or view is not self.view):
            self.show_view(view)

    def show_view(self, view: ClusterView) -> None:
        """Render ``view``; subclasses override :meth:`render_view`."""
        self.view = view
        if not self._composed:
            self.dirty = True  # rendered by on_mount once the widgets exist
            return
        self.dirty = False
        self.show_header(view)
        self.render_view(view)

    @property
    def _composed(self) -> bool:
        return bool(self.query(self.READY_SELECTOR))

    def on_mount(self) -> None:
        self.call_after_refresh(self._first_render)

    def _first_render(self) -> None:
        view = self.view or getattr(self.app, "view", None)
        if view is not None and self.dirty:
            self.show_view(view)

    def show_header(self, view: ClusterView, now: float | None = None) -> None:
        headers = self.query(SiteHeader)
        if not headers:
            return  # not composed yet (the header tick can come first); the first render shows it
        header = headers.first()
        header.show(view.site, view.statuses, view.now if now is None else now, self.TITLE_TEXT)

    def render_view(self, view: ClusterView) -> None:  # pragma: no cover - overridden
        pass


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: a stable key, the cells, the text a filter matches and per-column sort keys."""

    key: str
    cells: tuple
    search: str
    sort: tuple


_KEY, _CELLS, _SORT = attrgetter("key"), attrgetter("cells"), attrgetter("sort")


def _sorted(rows: list[Row], column: int, reverse: bool) -> list[Row]:
    """``rows`` by their sort value in ``column``, stable; rows without one last (first when reversed)."""
    values = list(map(itemgetter(column), map(_SORT, rows)))
    present = list(compress(range(len(rows)), map(is_not, values, repeat(None))))
    present.sort(key=values.__getitem__, reverse=reverse)
    if len(present) < len(rows):
        empty = list(compress(range(len(rows)), map(is_, values, repeat(None))))
        present = empty + present if reverse else present + empty
    return list(map(rows.__getitem__, present))


class TableScreen(SiteScreen):
    """A site screen around one :class:`SyncTable`: ``/`` filter, ``o`` sort, ``y`` copy, ``enter`` details."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="table.filter"),
        Binding("escape", "clear_filter", "Back", id="table.back"),
        Binding("o", "sort_next", "Sort", id="table.sort"),
        Binding("O", "sort_reverse", "Reverse", show=False, id="table.reverse"),
        Binding("y", "copy", "Copy", id="table.copy"),
    ]

    AUTO_FOCUS = "#table"
    READY_SELECTOR = "#table-status"

    #: (key, label, width or None)
    COLUMNS: Sequence[tuple[str, str, int | None]] = ()
    #: column keys shown only when the terminal is at least WIDE columns wide
    WIDE_ONLY: frozenset[str] = frozenset()
    WIDE = 120
    #: what a user sees when the source for this screen is missing
    EMPTY = "no data"

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort_column: int | None = None  # None: the screen's natural order (worst first)
        self.sort_reverse = False
        self._rows: list[Row] = []
        #: (columns shown, per row id: (row, its cells in those columns))
        self._narrowing: tuple[tuple[int, ...], dict[int, tuple[Row, tuple]]] = ((), {})

    def compose_body(self) -> ComposeResult:
        yield from self.compose_top()
        yield Input(placeholder="filter… (enter: keep, esc: clear)", id="filter")
        yield SyncTable(self.COLUMNS, id="table")
        yield Static("", id="table-status", markup=False)

    def shown_columns(self) -> list[int]:
        """Indexes into COLUMNS that fit the current width."""
        wide = self.size.width >= self.WIDE
        return [i for i, c in enumerate(self.COLUMNS) if wide or c[0] not in self.WIDE_ONLY]

    def on_resize(self) -> None:
        if not self._composed:
            return
        spec = [self.COLUMNS[i] for i in self.shown_columns()]
        if spec != self.table.column_spec:
            self.table.set_columns(spec)
            if self.view is not None and not self.dirty:
                self.render_rows()

    def compose_top(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> SyncTable:
        return self.query_one("#table", SyncTable)

    # -- rows ------------------------------------------------------------------------------
    def build_rows(self, view: ClusterView) -> list[Row] | None:  # pragma: no cover - overridden
        """Rows in natural order, or ``None`` when no source feeds this screen."""
        return []

    def visible_rows(self) -> list[Row]:
        rows = self._rows
        if self.filter_text:
            terms = self.filter_text.lower().split()
            if len(terms) == 1:
                term = terms[0]
                rows = [r for r in rows if term in r.search]
            else:
                rows = [r for r in rows if all(t in r.search for t in terms)]
        if self.sort_column is not None:
            rows = _sorted(rows, self.sort_column, self.sort_reverse)
        elif self.sort_reverse:
            rows = list(reversed(rows))
        return rows

    def render_view(self, view: ClusterView) -> None:
        rows = self.build_rows(view)
        self._missing = rows is None
        self._rows = rows or []
        self.render_rows()

    def render_rows(self) -> None:
        rows = self.visible_rows()
        shown = self.shown_columns()
        keys = list(map(_KEY, rows))
        if len(shown) == len(self.COLUMNS):
            self.table.sync_keyed(keys, list(map(_CELLS, rows)))
        else:
            self.table.sync_keyed(keys, self._narrowed(rows, tuple(shown)))
        status = self.query_one("#table-status", Static)
        if getattr(self, "_missing", False):
            status.update(Text(self.EMPTY, style="italic yellow"), layout=False)
            return
        status.update(self.status_line(rows), layout=False)  # one line (CSS): no layout pass
        settle = getattr(self.app, "settle_garbage", None)
        if settle is not None:
            settle()  # what the rows are made of now lives until they change

    def _narrowed(self, rows: list[Row], shown: tuple[int, ...]) -> list[tuple]:
        """The rows' cells in the shown columns; the same tuple for a row as long as the row is
        the same object, so that the table can skip it without comparing cells."""
        if self._narrowing[0] != shown or len(self._narrowing[1]) > 2 * len(rows) + 1000:
            self._narrowing = (shown, {})
        kept = self._narrowing[1]
        out = []
        for row in rows:
            entry = kept.get(id(row))
            if entry is None or entry[0] is not row:
                entry = kept[id(row)] = (row, tuple(row.cells[i] for i in shown))  # the row keeps its id unique
            out.append(entry[1])
        return out

    def status_line(self, rows: list[Row]) -> Text:
        """The line under the table: counts, the filter and the sort in force."""
        parts = [self.count_text(rows)]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        if self.sort_column is not None:
            parts.append(f"sorted by {self.COLUMNS[self.sort_column][1]}{' ↓' if self.sort_reverse else ' ↑'}")
        return Text(" · ".join(parts), style="dim")

    def count_text(self, rows: list[Row]) -> str:
        return f"{len(rows)} of {len(self._rows)}"

    def selected_row(self) -> Row | None:
        key = self.table.selected_key()
        return next((r for r in self._rows if r.key == key), None)

    # -- keys ------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            self.render_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.display = False
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.render_rows()
            self.table.focus()
        else:
            self.app.action_back()

    def action_sort_next(self) -> None:
        shown = self.shown_columns()
        if self.sort_column is None or self.sort_column not in shown:
            self.sort_column = shown[0]
        else:
            position = shown.index(self.sort_column) + 1
            self.sort_column = shown[position] if position < len(shown) else None
        self.sort_reverse = False
        self.render_rows()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.render_rows()

    def action_copy(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        text = self.copy_text(row)
        self.app.copy_to_clipboard(text)
        self.notify(f"copied {text!r}", timeout=2)

    def copy_text(self, row: Row) -> str:
        return row.key

    def on_data_table_row_selected(self, event: SyncTable.RowSelected) -> None:
        row = next((r for r in self._rows if r.key == event.row_key.value), None)
        if row is not None:
            self.open_row(row)

    def open_row(self, row: Row) -> None:
        pass
