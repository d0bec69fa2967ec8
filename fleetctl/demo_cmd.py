"""`fleetctl demo`: the whole system on this machine with nothing else installed (fleetctl.demo)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from fleetctl.demo.options import (
    DEFAULT_DRAIN_MIN,
    DEFAULT_HOURS,
    DEFAULT_ORDERS_PER_HOUR,
    DEFAULT_SPEED,
    DemoOptions,
)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo", help="run a simulated delivery day end to end: simulator, broker, store and the real service",
        description="A simulated delivery day of the bundled Helsinki site: its drones and robots on the built-in "
                    "simulator, the in-process MQTT broker, SQLite in the output folder and the real service, fed "
                    "a synthetic order stream (from the site's drop points) through the broker. A live view while "
                    "it runs; at the end a KPI table, a JSON report and a map (PNG) in --out. --broker, --store "
                    "and --px4-dir swap an embedded part for a real one.")
    p.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                   help=f"simulated seconds per wall second (default {DEFAULT_SPEED:g})")
    p.add_argument("--hours", type=float, default=DEFAULT_HOURS,
                   help=f"simulated hours of orders (default {DEFAULT_HOURS:g}), then a drain until every order ends")
    p.add_argument("--orders-per-hour", type=float, default=DEFAULT_ORDERS_PER_HOUR,
                   help=f"mean arrival rate, Poisson (default {DEFAULT_ORDERS_PER_HOUR:g})")
    p.add_argument("--seed", type=int, default=0, help="seed of the order stream (default 0)")
    p.add_argument("--quads", type=int, help="how many of the site's drones fly (default: all)")
    p.add_argument("--robots", type=int, help="how many of the site's robots drive (default: all)")
    p.add_argument("--out", type=Path, help="output folder (default ./demo-run-<timestamp>/)")
    p.add_argument("--drain", type=float, default=DEFAULT_DRAIN_MIN, dest="drain_min", metavar="MIN",
                   help=f"after the orders stop, wait at most this many simulated minutes for the last ones to end "
                        f"(default {DEFAULT_DRAIN_MIN:g})")
    p.add_argument("--broker", help="use this MQTT broker (mqtt://HOST:PORT) instead of the embedded one")
    p.add_argument("--store", help="use this store (postgresql+asyncpg://USER@HOST:PORT/DB: the run gets a schema "
                                   "of its own) instead of SQLite in the output folder")
    p.add_argument("--px4-dir", type=Path, help="fly real PX4 SITL (SIH) from this PX4 build instead of the built-in "
                                                "simulator (the speed is then limited to what PX4 keeps up with)")
    p.add_argument("--site", type=Path, help="another site folder (default: the bundled Helsinki site)")
    p.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.set_defaults(func=run)


def options_of(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(speed=args.speed, hours=args.hours, orders_per_hour=args.orders_per_hour, seed=args.seed,
                       quads=args.quads, robots=args.robots, out=args.out, broker=args.broker, store=args.store,
                       px4_dir=args.px4_dir, site=args.site, drain_min=args.drain_min,
                       live=False if args.plain else None)


def run(args: argparse.Namespace, console: Console) -> int:
    from fleetctl.demo.run import run_demo
    from sitl.errors import SimError

    options = options_of(args).checked()
    _logging(console, args.verbose, live=console.is_terminal and not args.plain)
    try:
        result = asyncio.run(run_demo(options, console, handle_sigint=True))
    except SimError as e:  # the simulator or PX4 could not start (ports taken, no PX4 build, ...)
        Console(stderr=True).print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
        return 2
    return result.exit_code


def _logging(console: Console, verbose: bool, *, live: bool) -> None:
    """Warnings (INFO with -v) above the live view, or plain lines on stderr (unless logging is set up
    already: a test's, say)."""
    handler: logging.Handler
    if live:
        handler = RichHandler(console=console, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    if not verbose:
        for noisy in ("amqtt", "transitions"):  # the embedded broker's own chatter
            logging.getLogger(noisy).setLevel(logging.ERROR)
        # MAVSDK's own log (a send before any vehicle is heard, retries under load): what matters of
        # it reaches the view as incidents; -v shows it all.
        logging.getLogger("vehicles.mavsdk").setLevel(logging.CRITICAL)
