"""Provides the modal screens: the ``:`` command line, ``?`` help and a generic detail view."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static


class CommandLine(ModalScreen[str | None]):
    """k9s-style ``:`` prompt at the bottom; returns the command text or ``None``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="command.cancel")]

    DEFAULT_CSS = """
    CommandLine { align: left bottom; background: $background 30%; }
    CommandLine > Input { dock: bottom; width: 100%; border: tall $accent; }
    """

    def __init__(self, commands: Sequence[str]) -> None:
        super().__init__()
        self.commands = list(commands)

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder=" ".join(":" + c for c in self.commands[:8]) + " …",
            suggester=SuggestFromList(self.commands, case_sensitive=False),
            id="command-input",
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lstrip(":").strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Keys of the screen below, the global keys and the ``:`` commands, generated from the bindings."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False, id="help.close2"),
        Binding("q", "close", "Close", show=False, id="help.close3"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, title: str, sections: Iterable[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.title_text = title
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for heading, rows in self.sections:
                table = Table(
                    title=heading, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0), expand=False
                )
                table.add_column("key", style="bold cyan", no_wrap=True)
                table.add_column("what")
                for key, what in rows:
                    table.add_row(key, what)
                yield Static(table)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = f"Help · {self.title_text}  (esc to close)"

    def action_close(self) -> None:
        self.dismiss(None)


class DetailScreen(ModalScreen[None]):
    """A scrollable box of key/value lines for one row; ``y`` copies its name."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="detail.close"),
        Binding("q", "close", "Close", show=False, id="detail.close2"),
        Binding("y", "copy", "Copy name", id="detail.copy"),
    ]

    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > VerticalScroll { width: 90%; max-width: 120; height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(
        self,
        title: str,
        fields: Sequence[tuple[str, str | Text]],
        *,
        copy: str = "",
        builder: Callable[[Any], Sequence[tuple[str, str | Text]]] | None = None,
        actions: dict[str, tuple[str, Callable[[], None]]] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)
        #: extra keys this view offers (the GPU details offer ``D`` to drain the host): key -> (what, callback)
        self.actions = dict(actions or {})
        self._pinned = [f for f in self.fields if f[0] == "action"] if self.actions else []
        self.copy_value = copy or title
        self.builder = builder

    def _table(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for name, value in self.fields:
            table.add_row(name, value)
        return table

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._table(), id="detail-body")

    def show_view(self, view: Any) -> None:
        """Live details: rebuild from the new view when a builder was given."""
        if self.builder is None:
            return
        fields = self._pinned + list(self.builder(view))
        if fields != self.fields:
            self.fields = fields
            self.query_one("#detail-body", Static).update(self._table())

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = self.title_text

    def on_key(self, event: Any) -> None:
        action = self.actions.get(event.key)
        if action is not None:
            event.stop()
            self.dismiss(None)
            action[1]()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.copy_value)
        self.notify(f"copied {self.copy_value!r}", timeout=2)
