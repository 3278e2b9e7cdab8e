"""Provides how a one-line table cell is drawn as rich draws it: its styled runs, the styles around them, its segments."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

#: measured widths, formatted texts and shapes kept per distinct cell; each cache is dropped wholesale past this many
CACHE_LIMIT = 50_000
#: what rich joins a text's lines with before rendering them
_NEWLINE = Text("\n")

#: a cell's styled runs of text (``None``: not a cell drawn here) and their width in cells
Runs = list[tuple[str, Style | None]]
#: what a cell's place and state put before, after, on padding and on plain text
CellStyles = tuple[Style, Style, Style | None, Style | None]


def text_runs(cell: object, width: int, console: Console, default_overflow: str | None) -> tuple[Runs | None, int]:
    """A cell's styled runs of text as rich renders a one-line Text ``width`` cells wide, and their width.

    As ``Text.wrap`` does without wrapping: a text wider than the column is truncated per
    its overflow ("fold" and "crop" cut it, "ellipsis" ends it with "…"). ``None`` runs: not
    a Text drawn here (wrapping, justified, tabs, newlines, overflow "ignore").
    """
    if type(cell) is not Text or cell.no_wrap is False or cell.justify not in (None, "default"):
        return None, 0
    plain = cell.plain
    overflow = cell.overflow or default_overflow or "fold"
    if "\n" in plain or "\t" in plain or overflow == "ignore":
        return None, 0
    line = cell
    if cell_len(plain) > width:
        line = cell.copy()
        line.truncate(width, overflow=overflow)
    runs = [(text, style) for text, style, _ in _NEWLINE.join((line,)).render(console) if text]
    return runs, cell_len(line.plain)


def cell_styles(
    base_style: Style, row_index: int, column_index: int, component_style: Style, post: Style
) -> CellStyles:
    """The styles a DataTable applies to a cell at this place: before, after, on padding, on plain text."""
    pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style

    def applied(style: Style | None) -> Style | None:  # Segment.apply_style(style=pre, post_style=post)
        if pre:
            style = pre + style
        if post:
            style = style + post if style else post
        return style

    # padding and fill are null-styled before styling; a text run without a style is None
    return pre, post, applied(Style.null()), applied(None)


def cell_segments(runs: Runs, used: int, inner: int, padding: int, styles: CellStyles) -> list[Segment]:
    """A one-line cell's segments: padding, its styled runs, spaces to the column width, padding.

    Each run gets the cell's styles applied before and after it, exactly as ``Styled(Padding(cell))``
    yields them.
    """
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
    return segments
