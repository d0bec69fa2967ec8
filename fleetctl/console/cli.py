"""`fleetctl console` and the console's commands as `fleetctl` subcommands (`fleetctl vehicles --json`,
`fleetctl nofly add circle ...`): the connection options, and running one command to its end.

Failures are typed errors (a ControlError with the service's code, BusRefused for bad credentials):
`fleetctl.cli` prints them as one line and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.live import Live as RichLive
from rich.prompt import Confirm

from fleetctl.bus import BrokerSettings
from fleetctl.bus.payloads import EventMessage
from fleetctl.console.actions import Live, execute
from fleetctl.console.client import DEFAULT_TIMEOUT_S, ControlClient
from fleetctl.console.grammar import WORDS, add_words
from fleetctl.console.render import event_line
from fleetctl.errors import ConfigError

ENV_BROKER = "FLEETCTL_CONSOLE_BROKER"
ENV_SITE = "FLEETCTL_CONSOLE_SITE"
ENV_CLIENT = "FLEETCTL_CONSOLE_CLIENT"
ENV_USERNAME = "FLEETCTL_USERNAME"
ENV_PASSWORD = "FLEETCTL_PASSWORD"
HISTORY = Path("~/.fleetctl_history")


def connection_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection (a running `fleetctl serve`, through its broker)")
    g.add_argument("--broker", default=os.environ.get(ENV_BROKER, "mqtt://127.0.0.1:1883"), metavar="URL",
                   help=f"the service's broker, mqtt:// or mqtts:// (env {ENV_BROKER})")
    g.add_argument("--site", default=os.environ.get(ENV_SITE), help=f"the site id (env {ENV_SITE})")
    g.add_argument("--client-id", default=os.environ.get(ENV_CLIENT), metavar="NAME",
                   help=f"this console's name on the control topics, which the service maps to a role "
                        f"(env {ENV_CLIENT}; default: the username, else 'console')")
    g.add_argument("--username", default=os.environ.get(ENV_USERNAME), help=f"broker account (env {ENV_USERNAME})")
    g.add_argument("--password", default=os.environ.get(ENV_PASSWORD), help=f"(env {ENV_PASSWORD})")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"wait this long for the service's answer (default {DEFAULT_TIMEOUT_S:g} s)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    return p


def add_parsers(sub: Any) -> None:
    """`fleetctl console` and the console's words as subcommands of `fleetctl`."""
    options = connection_options()
    p: argparse.ArgumentParser = sub.add_parser(
        "console", parents=[options], help="the interactive operator console of a running service",
        description="An operator console on a running service (from any machine that reaches its broker): "
                    "tables of vehicles and orders, commands to vehicles, the fleet, no-fly zones and dispatch, "
                    "a live table under the prompt. Type help inside.")
    p.add_argument("--history", type=Path, default=HISTORY, help="the history file (default ~/.fleetctl_history)")
    p.set_defaults(func=run_console)
    add_words(sub, [options])
    for word in WORDS:
        _set_func(sub.choices[word])


def _set_func(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run_word)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _set_func(child)


def _settings(args: argparse.Namespace) -> tuple[BrokerSettings, str, str]:
    if not args.site:
        raise ConfigError(f"which site? give --site or set {ENV_SITE}")
    try:
        broker = BrokerSettings(url=args.broker, username=args.username or None, password=args.password or None)
    except ValidationError as e:
        raise ConfigError(f"--broker: {e.errors()[0]['msg']}") from None
    return broker, args.site, args.client_id or args.username or "console"


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[ControlClient]:
    broker, site, name = _settings(args)
    async with ControlClient(broker, site, name, timeout_s=args.timeout) as client:
        yield client


def run_word(args: argparse.Namespace, console: Console) -> int:
    return asyncio.run(_run_word(args, console))


async def _ask(question: str) -> bool:
    return await asyncio.to_thread(Confirm.ask, question.removesuffix(" [y/N] "), default=False)


async def _run_word(args: argparse.Namespace, console: Console) -> int:
    async with _client(args) as client:
        if args.verb == ("watch",):
            await _watch(client, console, args.seconds)
        elif args.verb == ("events",) and args.follow:
            await _follow(client, console, args.count, as_json=args.json)
        else:
            await execute(client, args, console, confirm=_ask if sys.stdin.isatty() else None)
    return 0


async def _watch(client: ControlClient, console: Console, seconds: float | None) -> None:
    live = Live(client, events_kept=10)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(live.run(), name="watch-live")
        with (RichLive(live.view(), console=console, refresh_per_second=2, transient=False) as screen,
              contextlib.suppress(TimeoutError)):
            async with asyncio.timeout(seconds):
                while True:
                    await live.changed.wait()
                    live.changed.clear()
                    screen.update(live.view())
        task.cancel()


async def _follow(client: ControlClient, console: Console, count: int | None, *, as_json: bool) -> None:
    """New events as they are published (Ctrl-C, or `count` of them, ends it)."""
    seen = 0
    with contextlib.closing(client.watch(client.topics.events)) as events:
        async for message in events:
            event = EventMessage.model_validate_json(message.payload)
            if as_json:
                console.out(json.dumps(event.model_dump(mode="json"), ensure_ascii=False), highlight=False)
            else:
                console.print(event_line(event))
            seen += 1
            if count is not None and seen >= count:
                return


def run_console(args: argparse.Namespace, console: Console) -> int:
    from prompt_toolkit.patch_stdout import patch_stdout

    from fleetctl.console.app import ConsoleApp

    async def main() -> int:  # the console's own errors were shown; it ends at exit
        async with _client(args) as client:
            me = await client.request("whoami")
            console.print(f"connected to site [bold]{client.site}[/bold] as [bold]{me['client']}[/bold] "
                          f"({me['role']}); help lists the commands")
            with patch_stdout(raw=True):
                await ConsoleApp(client, Console(), history=args.history.expanduser()).run()
        return 0

    return asyncio.run(main())
