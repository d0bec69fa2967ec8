"""What each console command does on the client side: the request it sends, how the answer is shown.
Shared by the console's prompt and the `fleetctl` subcommands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console, RenderableType

from fleetctl.bus.payloads import EventMessage, OrderStatus, VehicleStateMessage, ZonesMessage
from fleetctl.console import render
from fleetctl.console.client import ControlClient
from fleetctl.errors import ControlError

Confirm = Callable[[str], Awaitable[bool]]


class Refused(ControlError):
    """The console itself refused (an unconfirmed fleet-wide command, an unreadable file)."""

    def __init__(self, message: str) -> None:
        super().__init__("refused", message)


def request_of(ns: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The control request (command, args) of a parsed line (not for watch, events --follow)."""
    verb: tuple[str, ...] = ns.verb
    match verb:
        case ("vehicles",):
            return "list_vehicles", {}
        case ("orders",):
            return "list_orders", {"states": ns.state, "limit": ns.limit}
        case ("order", "show"):
            return "show_order", {"order_id": ns.order_id}
        case ("order", "add"):
            args: dict[str, Any] = {"order_id": ns.order_id, "dropoff": _dropoff(ns.dropoff), "weight_kg": ns.weight_kg,
                                    "within_min": ns.within_min, "priority": ns.priority, "size": ns.size,
                                    "handoff": ns.handoff}
            for optional in ("pickup_depot", "handoff_pin"):
                if getattr(ns, optional):
                    args[optional] = getattr(ns, optional)
            if ns.earliest or ns.latest:
                if not (ns.earliest and ns.latest):
                    raise Refused("give both --earliest and --latest (or --within)")
                args["window"] = {"earliest": ns.earliest, "latest": ns.latest}
            return "add_order", args
        case ("order", "cancel"):
            return "cancel_order", {"order_id": ns.order_id, "reason": ns.reason}
        case ("order", "pin"):
            return "pin_order", {"order_id": ns.order_id, "vehicle_id": ns.vehicle_id}
        case ("vehicle", "ground"):
            return "ground_vehicle", {"vehicle_id": ns.vehicle_id, "reason": ns.reason}
        case ("vehicle", action):
            return f"{action}_vehicle", {"vehicle_id": ns.vehicle_id}
        case ("fleet", action):
            return f"{action}_fleet", {}
        case ("nofly", "add", "circle"):
            return "add_zone_circle", {"lat_deg": ns.lat_deg, "lon_deg": ns.lon_deg, "radius_m": ns.radius_m,
                                       **_zone_args(ns)}
        case ("nofly", "add", "geojson"):
            return "add_zone_geojson", {"geojson": _read_geojson(Path(ns.file)), **_zone_args(ns)}
        case ("nofly", "remove"):
            return "remove_zone", {"zone_id": ns.zone_id}
        case ("nofly", "list"):
            return "list_zones", {}
        case ("dispatch", action):
            return f"{action}_dispatch", {}
        case ("kpi",):
            return "kpi", {}
        case ("events",):
            return "recent_events", {"limit": ns.limit}
        case ("whoami",):
            return "whoami", {}
    raise Refused(f"{' '.join(verb)} is not a request")


def _dropoff(text: str) -> str | dict[str, float]:
    lat, sep, lon = text.partition(",")
    if sep:
        try:
            return {"lat_deg": float(lat), "lon_deg": float(lon)}
        except ValueError:
            pass
    return text


def _zone_args(ns: argparse.Namespace) -> dict[str, Any]:
    out = {"reason": ns.reason, "floor_m": ns.floor_m, "ceiling_m": ns.ceiling_m, "until": ns.until,
           "active_from": ns.active_from}
    if ns.zone_id:
        out["zone_id"] = ns.zone_id
    return out


def _read_geojson(path: Path) -> dict[str, Any]:
    # Small files, read once per command: not worth a thread (the console waits for it anyway).
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise Refused(f"cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise Refused(f"{path} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise Refused(f"{path}: GeoJSON must be an object")
    return data


def rendering(verb: tuple[str, ...], result: Any) -> RenderableType:
    match verb:
        case ("vehicles",):
            return render.vehicles_table(result)
        case ("orders",):
            return render.orders_table(result)
        case ("order", "show"):
            return render.order_detail(result)
        case ("nofly", "list"):
            return render.zones_table(result)
        case ("nofly", "add", _):
            return render.zones_table(result["zones"])
        case ("kpi",):
            return render.kpi_table(result)
        case ("events",):
            return render.events_table(result)
        case ("fleet", action):
            return render.mapping_table(result["vehicles"], f"fleet {action}")
    return render.mapping_table(result, " ".join(verb))


async def confirm_fleet(ns: argparse.Namespace, confirm: Confirm | None) -> None:
    """A fleet-wide command runs only when confirmed: --yes, or a yes to the question."""
    if getattr(ns, "yes", False):
        return
    question = f"{ns.verb[1]} EVERY vehicle under way? [y/N] "
    if confirm is None:
        raise Refused(f"fleet {ns.verb[1]} acts on the whole fleet: add --yes to confirm (not interactive)")
    if not await confirm(question):
        raise Refused(f"fleet {ns.verb[1]} not confirmed: nothing sent")


async def execute(client: ControlClient, ns: argparse.Namespace, out: Console, *,
                  confirm: Confirm | None = None) -> Any:
    """Run one parsed command (not watch / events --follow), show its answer (JSON with --json), and
    return it. ControlError (with the service's code) when refused or failed."""
    if ns.verb[0] == "fleet":
        await confirm_fleet(ns, confirm)
    command, args = request_of(ns)
    result = await client.request(command, args)
    if getattr(ns, "json", False):
        out.out(json.dumps(result, indent=2, ensure_ascii=False), highlight=False)
    else:
        out.print(rendering(ns.verb, result))
    return result


class Live:
    """The service's live topics, as the latest of each: vehicle states, order statuses, the last
    events, the zones. `on_event` sees each new event (events --follow)."""

    def __init__(self, client: ControlClient, *, events_kept: int = 6) -> None:
        self._client = client
        self.vehicles: dict[str, VehicleStateMessage] = {}
        self.orders: dict[str, OrderStatus] = {}
        self.events: deque[EventMessage] = deque(maxlen=events_kept)
        self.zone_ids: list[str] | None = None  # None until the service's zones message came
        self.on_event: Callable[[EventMessage], None] | None = None
        self.changed = asyncio.Event()

    def view(self) -> RenderableType:
        return render.live_view(self.vehicles, self.orders, list(self.events),
                                zones=None if self.zone_ids is None else len(self.zone_ids))

    async def run(self) -> None:
        topics = self._client.topics
        async with contextlib.AsyncExitStack() as stack:
            subs = [stack.enter_context(contextlib.closing(self._client.watch(f)))
                    for f in (topics.all_vehicle_states, topics.all_order_status, topics.events, topics.zones)]
            async with asyncio.TaskGroup() as group:
                for sub, handle in zip(subs, (self._vehicle, self._order, self._event, self._zones), strict=True):
                    group.create_task(self._pump(sub, handle), name=f"console-live-{sub.filter}")

    async def _pump(self, sub: Any, handle: Callable[[str, bytes], None]) -> None:
        async for message in sub:
            try:
                handle(message.topic, message.payload)
            except (ValidationError, ValueError):
                continue  # a message of another version: the live view skips it
            self.changed.set()

    def _vehicle(self, topic: str, payload: bytes) -> None:
        state = VehicleStateMessage.model_validate_json(payload)
        self.vehicles[state.vehicle_id] = state

    def _order(self, topic: str, payload: bytes) -> None:
        status = OrderStatus.model_validate_json(payload)
        self.orders[status.order_id] = status

    def _event(self, topic: str, payload: bytes) -> None:
        event = EventMessage.model_validate_json(payload)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _zones(self, topic: str, payload: bytes) -> None:
        self.zone_ids = [z.zone_id for z in ZonesMessage.model_validate_json(payload).zones]
