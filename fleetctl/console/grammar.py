"""The console's command language, one argparse grammar for both surfaces: typed at the console's
prompt (`vehicle rtl quad-1`) and as `fleetctl` subcommands (`fleetctl vehicle rtl quad-1 --json`).

    vehicles                              orders [--state S ...] [--limit N]
    order show|add|cancel|pin ...         vehicle rtl|land|pause|resume|ground|unground ID
    fleet rtl|land|pause [--yes]          nofly add circle LAT LON R [--until T] | add geojson FILE
    nofly remove ID | list                dispatch pause|resume
    kpi    events [--follow]    watch    whoami

Each leaf sets `verb` (a tuple of the words, e.g. ("vehicle", "rtl")) for `fleetctl.console.actions`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Handoff, Priority, SizeClass

#: The top-level words (the CLI registers each as a `fleetctl` subcommand).
WORDS = ("vehicles", "orders", "order", "vehicle", "fleet", "nofly", "dispatch", "kpi", "events", "watch", "whoami")
VEHICLE_VERBS = ("rtl", "land", "pause", "resume", "ground", "unground")
FLEET_VERBS = ("rtl", "land", "pause")


class GrammarError(Exception):
    """A line the grammar does not accept (the console shows the message and carries on)."""


class ConsoleParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting (at the console's prompt)."""

    def error(self, message: str) -> NoReturn:
        raise GrammarError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise GrammarError(message.strip() if message else "")


def add_words(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """The console's words as subparsers of `sub`; `parents` go on every leaf (the CLI's connection
    options and --json, so they may come last: `fleetctl vehicle rtl quad-1 --json`)."""
    def leaf(where: Any, name: str, verb: tuple[str, ...], help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = where.add_parser(name, help=help, description=help, parents=list(parents))
        p.set_defaults(verb=verb)
        return p

    def branch(name: str, help: str) -> Any:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        return p.add_subparsers(dest=f"{name}_verb", metavar="VERB", required=True)

    leaf(sub, "vehicles", ("vehicles",), "every vehicle: link, mode, battery, sortie, why not free")
    p = leaf(sub, "orders", ("orders",), "orders from the service's store")
    p.add_argument("--state", action="append", choices=[s.value for s in OrderState], default=[],
                   help="only these states (repeat for several)")
    p.add_argument("--limit", type=int, default=200)

    order = branch("order", "one order: show, add, cancel, pin")
    p = leaf(order, "show", ("order", "show"), "an order and its events")
    p.add_argument("order_id")
    p = leaf(order, "add", ("order", "add"), "a new order, through the service's intake (validated like any other)")
    p.add_argument("order_id")
    p.add_argument("dropoff", help="a drop point's name, or LAT,LON")
    p.add_argument("--weight", type=float, default=1.0, dest="weight_kg", metavar="KG")
    p.add_argument("--within", type=float, default=120.0, dest="within_min", metavar="MIN",
                   help="deliver within this many minutes from now (the service's clock; default 120)")
    p.add_argument("--earliest", help="window start, ISO 8601 with zone (with --latest instead of --within)")
    p.add_argument("--latest", help="window end, ISO 8601 with zone")
    p.add_argument("--priority", choices=[x.value for x in Priority], default=Priority.STANDARD.value)
    p.add_argument("--size", choices=[x.value for x in SizeClass], default=SizeClass.SMALL.value)
    p.add_argument("--handoff", choices=[x.value for x in Handoff], default=Handoff.LOCKER.value)
    p.add_argument("--depot", dest="pickup_depot")
    p.add_argument("--pin", dest="handoff_pin", help="with --handoff pin: the PIN the recipient will enter")
    p = leaf(order, "cancel", ("order", "cancel"), "cancel an order (a vehicle on its way is recalled)")
    p.add_argument("order_id")
    p.add_argument("--reason", default="cancelled by the operator")
    p = leaf(order, "pin", ("order", "pin"), "only VEHICLE may deliver the order (no VEHICLE: unpin)")
    p.add_argument("order_id")
    p.add_argument("vehicle_id", nargs="?")

    vehicle = branch("vehicle", "one vehicle: " + ", ".join(VEHICLE_VERBS))
    for verb in VEHICLE_VERBS:
        p = leaf(vehicle, verb, ("vehicle", verb), {
            "rtl": "return to launch", "land": "land where it is", "pause": "hold position",
            "resume": "carry on with its mission", "ground": "dispatch gives it nothing new",
            "unground": "dispatch may use it again"}[verb])
        p.add_argument("vehicle_id")
        if verb == "ground":
            p.add_argument("--reason", default="")

    fleet = branch("fleet", "every vehicle under way: rtl, land, pause (asks first)")
    for verb in FLEET_VERBS:
        p = leaf(fleet, verb, ("fleet", verb), f"{verb} every armed vehicle")
        p.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when not interactive)")

    nofly = branch("nofly", "no-fly zones: add, remove, list")
    add = nofly.add_parser("add", help="add a zone", description="add a zone").add_subparsers(
        dest="nofly_shape", metavar="SHAPE", required=True)
    p = leaf(add, "circle", ("nofly", "add", "circle"), "a circle: LAT LON RADIUS_M")
    p.add_argument("lat_deg", type=float)
    p.add_argument("lon_deg", type=float)
    p.add_argument("radius_m", type=float)
    _zone_options(p)
    p = leaf(add, "geojson", ("nofly", "add", "geojson"), "zones from a GeoJSON file (Polygon, or Point with "
             "radius_m; properties id, reason, floor_m, ceiling_m)")
    p.add_argument("file")
    _zone_options(p)
    p = leaf(nofly, "remove", ("nofly", "remove"), "lift a zone")
    p.add_argument("zone_id")
    leaf(nofly, "list", ("nofly", "list"), "the zones in force now or later")

    dispatch = branch("dispatch", "pause or resume dispatch (sorties under way go on)")
    leaf(dispatch, "pause", ("dispatch", "pause"), "no new sorties start")
    leaf(dispatch, "resume", ("dispatch", "resume"), "sorties start again")

    leaf(sub, "kpi", ("kpi",), "orders by state, on-time rate, delivery times, fleet use")
    p = leaf(sub, "events", ("events",), "the last events; --follow for new ones as they happen")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--count", type=int, help="with --follow: stop after this many events")
    p = leaf(sub, "watch", ("watch",), "a live table of the fleet (at the console: shown under the prompt)")
    p.add_argument("--seconds", type=float, help="outside the console: stop after this long (default: Ctrl-C)")
    leaf(sub, "whoami", ("whoami",), "this client's name and role at the service")


def _zone_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", dest="zone_id", help="the zone's id (default: op-N)")
    p.add_argument("--reason", default="operator")
    p.add_argument("--until", help="lifted at: ISO 8601 time with zone, or a duration from now (30m, 2h)")
    p.add_argument("--from", dest="active_from", help="in force from (same forms; default now)")
    p.add_argument("--floor", type=float, default=0.0, dest="floor_m", metavar="M")
    p.add_argument("--ceiling", type=float, dest="ceiling_m", metavar="M", help="default: no ceiling")


def console_parser() -> ConsoleParser:
    """The grammar at the console's prompt (with exit, quit, help)."""
    parser = ConsoleParser(prog="", add_help=False)
    sub = parser.add_subparsers(dest="word", metavar="COMMAND", required=True, parser_class=ConsoleParser)
    json_opt = ConsoleParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="the answer as JSON")
    add_words(sub, [json_opt])
    for name in ("help", "exit", "quit"):
        sub.add_parser(name).set_defaults(verb=(name,))
    return parser


def completions(vehicle_ids: Sequence[str] = (), order_ids: Sequence[str] = (),
                zone_ids: Sequence[str] = ()) -> dict[str, Any]:
    """The words for prompt_toolkit's NestedCompleter, with the ids the console knows of now (the
    service's live topics) where a command takes one."""
    vehicles = dict.fromkeys(vehicle_ids)
    orders = dict.fromkeys(order_ids)
    verbs: dict[str, Any] = {
        "order": {"show": orders, "add": None, "cancel": orders,
                  "pin": {order_id: vehicles for order_id in order_ids}},
        "vehicle": {verb: vehicles for verb in VEHICLE_VERBS},
        "fleet": dict.fromkeys(FLEET_VERBS),
        "nofly": {"add": dict.fromkeys(("circle", "geojson")), "remove": dict.fromkeys(zone_ids), "list": None},
        "dispatch": dict.fromkeys(("pause", "resume")),
        "orders": {"--state": dict.fromkeys(s.value for s in OrderState)},
        "events": dict.fromkeys(("--follow", "--limit")),
    }
    return {**dict.fromkeys((*WORDS, "help", "exit", "quit")), **verbs}
