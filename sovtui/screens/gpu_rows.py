"""Provides the cells of the GPUs screen's rows: a GPU's row, its tree row under its host, the worst-first order."""

from __future__ import annotations

from operator import attrgetter, le

from rich.text import Text

from ..model.types import Health
from ..model.view import GpuRow
from ..widgets.fmt import fmt_num, level_text
from .base import Row

#: shared cell texts: a cell is never modified once made, and the fleet repeats the same few
_TEXTS: dict[tuple[str, str], Text] = {}
_LEVEL_TEXTS: dict[tuple[Health, str], Text] = {}


def shared_text(plain: str, style: str) -> Text:
    """A Text of ``plain`` in ``style``, the same object for the same pair."""
    text = _TEXTS.get((plain, style))
    if text is None:
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        text = _TEXTS[(plain, style)] = Text(plain, style=style)
    return text


def shared_level_text(level: Health, reason: str) -> Text:
    """A level's glyph and reason as a Text, the same object for the same pair."""
    text = _LEVEL_TEXTS.get((level, reason))
    if text is None:
        if len(_LEVEL_TEXTS) > 4096:
            _LEVEL_TEXTS.clear()
        text = _LEVEL_TEXTS[(level, reason)] = level_text(level, reason)
    return text


_HOST_INDEX, _LEVEL_OF = attrgetter("gpu.host", "gpu.index"), attrgetter("verdict.level")  # of a GpuRow
_NEGATIVE_RANK = {level: -level.rank for level in Health}


def tree_row(row: Row, last: bool) -> Row:
    """A GPU's row under its host: a tree branch instead of the host name."""
    return Row(row.key, (shared_text("  └─" if last else "  ├─", "dim"), *row.cells[1:]), row.search, row.sort)


def worst_first(gpus: tuple[GpuRow, ...]) -> list[GpuRow]:
    """The GPUs by (worst level, host, index)."""
    places = list(map(_HOST_INDEX, gpus))
    if all(map(le, places, places[1:])):  # as the view lists them: a stable sort on the level is enough
        ranks = list(map(_NEGATIVE_RANK.__getitem__, map(_LEVEL_OF, gpus)))
        return list(map(gpus.__getitem__, sorted(range(len(gpus)), key=ranks.__getitem__)))
    return sorted(gpus, key=lambda r: (-r.verdict.level.rank, r.gpu.host, r.gpu.index))


def gpu_row(item: GpuRow) -> Row:
    """A GPU's row: its cells, what a filter searches and what each column sorts on."""
    g, v = item.gpu, item.verdict
    model = g.name.replace("NVIDIA ", "")
    cells = (
        g.host,
        str(g.index),
        model,
        fmt_num(g.util_pct, "%"),
        fmt_num(g.mem_pct, "%"),
        fmt_num(g.temp_c, "°"),
        fmt_num(g.power_w, "W"),
        shared_level_text(v.level, v.first_reason),
        g.workload or shared_text("—", "dim"),
    )
    search = " ".join([g.host, model, g.uuid, v.level.value, *v.reasons, g.workload]).lower()
    sort = (g.host, g.index, model, g.util_pct, g.mem_pct, g.temp_c, g.power_w, -v.level.rank, g.workload)
    return Row(g.key, cells, search, sort)
