"""Provides a focusable Overview tile: a titled box with a level, a headline and detail lines."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static

from ..model.types import Health
from ..model.view import Tile

LEVEL_WORD = {Health.OK: "OK", Health.WARN: "WARN", Health.CRIT: "CRIT", Health.UNKNOWN: "N/A"}
LEVEL_STYLE = {Health.OK: "green", Health.WARN: "yellow", Health.CRIT: "bold red", Health.UNKNOWN: "dim"}


class TileWidget(Static, can_focus=True):
    """One tile; ``enter`` asks the screen to open the tile's target."""

    BINDINGS = [Binding("enter", "open", "Open", id="tile.open")]

    DEFAULT_CSS = """
    TileWidget { border: round $panel-lighten-2; padding: 0 1; height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    TileWidget:focus { border: double $accent; }
    TileWidget.-ok { border-title-color: green; }
    TileWidget.-warn { border: round yellow; border-title-color: yellow; }
    TileWidget.-crit { border: round red; border-title-color: red; }
    TileWidget.-warn:focus { border: double yellow; }
    TileWidget.-crit:focus { border: double red; }
    """

    class Open(Message):
        """The user wants the tile's screen."""

        def __init__(self, target: str) -> None:
            super().__init__()
            self.target = target

    def __init__(self, key: str, *, id: str | None = None) -> None:
        super().__init__("", id=id or f"tile-{key}", markup=False)
        self.key = key
        self.target = key
        self._shown: Tile | None = None

    def show(self, tile: Tile) -> None:
        if tile == self._shown:
            return
        self._shown = tile
        self.target = tile.target
        for level in Health:
            self.set_class(tile.level is level, f"-{level.value}")
        self.border_title = f"{tile.level.glyph} {tile.title} · {LEVEL_WORD[tile.level]}"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(tile.headline, style=LEVEL_STYLE[tile.level] if tile.known else "dim")
        for line in tile.lines:
            text.append("\n")
            text.append(line, style="" if tile.known else "dim italic")
        self.update(text)

    def action_open(self) -> None:
        self.post_message(self.Open(self.target))

    def on_click(self) -> None:
        self.post_message(self.Open(self.target))
