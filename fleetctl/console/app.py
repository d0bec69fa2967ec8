"""`fleetctl console`: the operator's prompt. Completion of the command words, a history file, the
answers as rich tables above the prompt, `watch` as a live table under it that refreshes while the
operator types, `events --follow` printing events as they happen, and a question before anything
fleet-wide.

Runs headless too (tests): give it a prompt_toolkit input (`create_pipe_input()`) and output
(`DummyOutput()`), and a rich Console writing where the test reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style
from rich.console import Console
from rich.markup import escape

from fleetctl.console.actions import Live, execute
from fleetctl.console.client import ControlClient
from fleetctl.console.grammar import GrammarError, completions, console_parser
from fleetctl.console.render import event_line
from fleetctl.errors import FleetError
from fleetctl.orders.lifecycle import FINAL

HELP = """commands (TAB completes, --json after any of them prints the answer as JSON):
  vehicles | orders [--state S] | order show|add|cancel|pin ... | kpi | whoami
  vehicle rtl|land|pause|resume|ground|unground ID | fleet rtl|land|pause
  nofly add circle LAT LON R [--until 30m] | nofly add geojson FILE | nofly remove ID | nofly list
  dispatch pause|resume | events [--follow] | watch (toggles the live table) | help | exit
  `COMMAND -h` explains one."""
_STYLE = Style.from_dict({"bottom-toolbar": "noreverse"})
#: Order ids offered for completion: the open ones, newest first, at most this many.
COMPLETED_ORDERS_MAX = 200


class LiveCompleter(Completer):
    """The command words, and the vehicle, order and zone ids the live topics show now (an order id
    only while the order is open: those are the ones an operator cancels or pins). Words are whole
    shell words: prompt_toolkit's NestedCompleter stops at a hyphen, and every id has one."""

    def __init__(self, live: Live) -> None:
        self._live = live
        self._key: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
        self._tree: dict[str, Any] = {}

    def _current(self) -> dict[str, Any]:
        live = self._live
        open_orders = sorted((s.order_id for s in live.orders.values() if s.state not in FINAL), reverse=True)
        key = (tuple(sorted(live.vehicles)), tuple(open_orders[:COMPLETED_ORDERS_MAX]), tuple(live.zone_ids or ()))
        if key != self._key:
            self._key = key
            self._tree = completions(*key)
        return self._tree

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor.lstrip()
        *done, partial = text.split(" ") if text else [""]
        level: Any = self._current()
        for word in (w for w in done if w):
            level = level.get(word) if isinstance(level, dict) else None
            if level is None:
                return
        if isinstance(level, dict):
            for word in level:
                if word.startswith(partial):
                    yield Completion(word, start_position=-len(partial))


class ConsoleApp:
    def __init__(self, client: ControlClient, out: Console, *, history: Path | None = None,
                 input: Input | None = None, output: Output | None = None) -> None:
        self.client = client
        self.out = out
        self.live = Live(client)
        self.watching = False
        self.following = False
        self.failures = 0
        self._parser = console_parser()
        hist: History = FileHistory(str(history)) if history is not None else InMemoryHistory()
        self.session: PromptSession[str] = PromptSession(
            completer=LiveCompleter(self.live), history=hist, input=input, output=output,
            style=_STYLE, refresh_interval=1.0, bottom_toolbar=None)
        self.live.on_event = self._event

    def _prompt(self) -> str:
        return f"{self.client.site}:{self.client.client}> "

    def _toolbar(self) -> ANSI:
        """The live table under the prompt, re-rendered at every refresh."""
        size = self.session.output.get_size()
        buffer = io.StringIO()
        Console(file=buffer, force_terminal=True, color_system="standard", width=max(60, size.columns),
                legacy_windows=False).print(self.live.view())
        return ANSI(buffer.getvalue().rstrip("\n"))

    def _event(self, event: Any) -> None:
        if self.following:
            self.out.print(event_line(event))

    async def run(self) -> int:
        """Until exit, quit or end of input. Returns how many commands failed (the exit status is 0 or 1)."""
        async with asyncio.TaskGroup() as group:
            live = group.create_task(self.live.run(), name="console-live")
            try:
                with contextlib.suppress(EOFError):
                    while await self._one():
                        pass
            finally:
                live.cancel()
        return self.failures

    async def _one(self) -> bool:
        """One line: False to stop."""
        try:
            line = await self.session.prompt_async(self._prompt)
        except KeyboardInterrupt:
            return True
        try:
            words = shlex.split(line)
        except ValueError as e:
            self.out.print(f"[red]{escape(str(e))}[/red]")
            return True
        if not words:
            return True
        try:
            ns = self._parser.parse_args(words)
        except GrammarError as e:
            if str(e):
                self.out.print(str(e), markup=False, highlight=False)
            return True
        verb = ns.verb
        if verb[0] in ("exit", "quit"):
            return False
        if verb[0] == "help":
            self.out.print(HELP, markup=False, highlight=False)
        elif verb == ("watch",):
            self.watching = not self.watching
            self.session.bottom_toolbar = self._toolbar if self.watching else None
            self.out.print("watching: the live table is under the prompt (watch again to hide it)"
                           if self.watching else "stopped watching")
        elif verb == ("events",) and ns.follow:
            self.following = not self.following
            self.out.print("following events (events --follow again to stop)" if self.following
                           else "stopped following events")
        else:
            try:
                await execute(self.client, ns, self.out, confirm=self._confirm)
            except FleetError as e:
                self.failures += 1
                self.out.print(f"[bold red]error:[/bold red] {escape(str(e))}", soft_wrap=True, highlight=False)
        return True

    async def _confirm(self, question: str) -> bool:
        answer = await self.session.prompt_async(question)
        return answer.strip().lower() in ("y", "yes")
