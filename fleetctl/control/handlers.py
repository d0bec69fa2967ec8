"""What each control command does on the running service: one method per command of
`fleetctl.control.commands.COMMANDS`, each taking the validated arguments and the client's name, each
returning a JSON-able result or raising a typed error (FleetError, PlanningError, VehicleError; the
server turns them into error codes)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from fleetctl.bus import Bus
from fleetctl.bus.payloads import OrderStatus, ZoneInfo
from fleetctl.clock import Clock
from fleetctl.control import commands as c
from fleetctl.control.commands import ErrorCode, parse_when
from fleetctl.control.roles import ControlSettings
from fleetctl.control.zones import ZoneBook, zones_from_geojson
from fleetctl.dispatch import Dispatcher
from fleetctl.errors import ControlError, UnknownOrder, UnknownVehicleId
from fleetctl.fleet_view import FleetMember, why_not_free
from fleetctl.operator import Operator
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Order, TimeWindow
from fleetctl.sortie_manager import SortieManager
from fleetctl.status import order_status
from fleetctl.store import Store
from fleetctl.store.records import EventRecord, OrderRecord
from planner.airspace import NoFlyZone
from planner.site import Site
from vehicles.base import Vehicle
from vehicles.errors import VehicleError
from vehicles.mavsdk_backend import MavsdkFleet

#: How long `add_order` waits for intake to answer (wall seconds).
ORDER_ANSWER_S = 10.0
#: Order fields a list shows (the payload and geometry are for `show_order`).
_ORDER_COLUMNS = ("order_id", "state", "reason", "detail", "priority", "vehicle_id", "pinned_vehicle", "sortie_id",
                  "eta", "window_earliest", "window_latest", "kinds", "depot", "attempts", "created_at", "updated_at")
#: What each vehicle verb calls on the `Vehicle`.
_VEHICLE_VERBS: dict[str, Callable[[Vehicle], Awaitable[None]]] = {
    "rtl": lambda v: v.return_to_launch(),
    "land": lambda v: v.land(),
    "pause": lambda v: v.pause(),
    "resume": lambda v: v.resume(),
}


def jsonable(value: Any) -> Any:
    return to_jsonable_python(value)


def order_row(record: OrderRecord) -> dict[str, Any]:
    return {name: jsonable(getattr(record, name)) for name in _ORDER_COLUMNS}


def event_row(event: EventRecord) -> dict[str, Any]:
    return {"seq": event.seq, "at": jsonable(event.at), "entity": str(event.entity), "entity_id": event.entity_id,
            "kind": event.kind, "data": jsonable(dict(event.data))}


@dataclasses.dataclass
class Handlers:
    site: Site
    site_id: str
    store: Store
    bus: Bus
    fleet: MavsdkFleet
    members: Mapping[str, FleetMember]
    operator: Operator
    dispatcher: Dispatcher
    sorties: SortieManager
    clock: Clock
    zones: ZoneBook
    settings: ControlSettings
    roles: Callable[[str], str]

    # -- queries

    async def whoami(self, args: c.NoArgs, by: str) -> Any:
        return {"client": by, "role": self.roles(by), "site": self.site_id}

    async def list_vehicles(self, args: c.NoArgs, by: str) -> Any:
        heard = self.fleet.vehicles
        rows = []
        for member in self.members.values():
            vehicle = heard.get(member.sysid)
            state = vehicle.state if vehicle is not None else None
            plan = self.sorties.active.get(member.vehicle_id)
            grounded = member.vehicle_id in self.sorties.grounded
            p = state.position if state is not None else None
            rows.append({
                "vehicle_id": member.vehicle_id, "kind": member.kind, "model": member.model.name,
                "depot": member.depot, "sysid": member.sysid, "linked": bool(state and state.link_alive),
                "mode": state.mode if state else None, "armed": state.armed if state else None,
                "battery_percent": None if state is None or state.battery_percent is None
                else round(state.battery_percent, 1),
                "lat_deg": p.lat_deg if p else None, "lon_deg": p.lon_deg if p else None,
                "alt_m": round(p.alt_rel_m, 1) if p else None, "grounded": grounded,
                "sortie_id": plan.sortie_id if plan else None, "order_id": plan.order_id if plan else None,
                "not_free": why_not_free(state, busy=plan is not None, grounded=grounded),
            })
        return rows

    async def list_orders(self, args: c.ListOrdersArgs, by: str) -> Any:
        records = await self.store.list_orders(args.states or None, limit=args.limit)
        return [order_row(r) for r in records]

    async def show_order(self, args: c.OrderArgs, by: str) -> Any:
        record = await self.store.get_order(args.order_id)
        events = await self.store.order_events(args.order_id)
        return {**order_row(record), "payload": jsonable(record.payload), "events": [event_row(e) for e in events]}

    async def list_zones(self, args: c.NoArgs, by: str) -> Any:
        now_s = self.clock.now().timestamp()
        return [{**self.zones.info(z).model_dump(mode="json"), "active_now": z.is_active(now_s),
                 "source": "site" if any(s.zone_id == z.zone_id for s in self.site.zones) else "operator"}
                for z in self.zones.current()]

    async def kpi(self, args: c.NoArgs, by: str) -> Any:
        counts = await self.store.count_by_state()
        delivered = await self.store.list_orders(OrderState.DELIVERED, limit=100_000)
        on_time = sum(1 for o in delivered if o.window_latest is None or o.updated_at <= o.window_latest)
        minutes = [(o.updated_at - o.created_at).total_seconds() / 60.0 for o in delivered]
        heard = self.fleet.vehicles
        linked = sum(1 for m in self.members.values()
                     if (v := heard.get(m.sysid)) is not None and v.state.link_alive)
        return {
            "orders": {str(state): n for state, n in counts.items()},
            "delivered": len(delivered),
            "on_time_rate": round(on_time / len(delivered), 3) if delivered else None,
            "delivery_min_mean": round(statistics.fmean(minutes), 2) if minutes else None,
            "delivery_min_max": round(max(minutes), 2) if minutes else None,
            "vehicles": len(self.members), "vehicles_linked": linked, "on_sorties": len(self.sorties.active),
            "grounded": len(self.sorties.grounded), "dispatch_paused": self.dispatcher.paused,
            "zones": len(self.zones.current()), "events": await self.store.last_event_seq(),
            "at": jsonable(self.clock.now()),
        }

    async def recent_events(self, args: c.EventsArgs, by: str) -> Any:
        last = await self.store.last_event_seq()
        events = await self.store.events_after(max(0, last - args.limit), limit=args.limit)
        return [event_row(e) for e in events]

    # -- orders

    async def add_order(self, args: c.AddOrderArgs, by: str) -> Any:
        """Published on orders/new, as any producer's order, so intake validates and stores it (the
        order id is the idempotency key); the answer is what intake made of it."""
        now = self.clock.now()
        window = args.window or TimeWindow(earliest=now, latest=now + timedelta(minutes=args.within_min))
        fields = args.model_dump(exclude={"window", "within_min"}, exclude_none=True)
        order = Order.model_validate({**fields, "site": self.site_id, "window": window})
        before = await self._order_or_none(order.order_id)
        if before is not None:
            await self.bus.publish(self.bus.topics.orders_new, order)  # intake answers the producer as usual
            if before.fingerprint != order.fingerprint():
                raise ControlError(ErrorCode.CONFLICT, f"order id {order.order_id} is taken by an order with other "
                                   "content (give the same --window to repeat an order safely)")
            return {**order_status(before).model_dump(mode="json"), "duplicate": True}
        # The status topic is retained: one published before our subscription is active still arrives.
        async with self.bus.subscribe(self.bus.topics.order_status(order.order_id), maxsize=16) as statuses:
            await self.bus.publish(self.bus.topics.orders_new, order)
            try:
                async with asyncio.timeout(ORDER_ANSWER_S):
                    async for message in statuses:
                        if OrderStatus.model_validate_json(message.payload).state is not OrderState.RECEIVED:
                            break
            except TimeoutError:
                raise ControlError(ErrorCode.UNAVAILABLE, f"order {order.order_id} was sent to intake, which has "
                                   f"not answered within {ORDER_ANSWER_S:g} s (it may still)") from None
        record = await self.store.get_order(order.order_id)
        status = order_status(record).model_dump(mode="json")
        await self.store.append_event("order", order.order_id, "operator.order_added", {"by": by})
        if record.state is OrderState.REJECTED:
            raise ControlError(ErrorCode.ORDER_REJECTED, f"order {order.order_id} rejected ({record.reason}): "
                               f"{record.detail}", result=status)
        return status

    async def _order_or_none(self, order_id: str) -> OrderRecord | None:
        try:
            return await self.store.get_order(order_id)
        except UnknownOrder:
            return None

    async def cancel_order(self, args: c.CancelArgs, by: str) -> Any:
        record = await self.operator.cancel(args.order_id, reason=args.reason, by=by)
        now = await self.store.get_order(record.order_id)
        # Operator.cancel returns the order as it was when it recalled a vehicle, cancelled otherwise.
        return {**order_row(now), "recalled": record.state is not OrderState.CANCELLED}

    async def pin_order(self, args: c.PinArgs, by: str) -> Any:
        return order_row(await self.operator.pin(args.order_id, args.vehicle_id, by=by))

    # -- vehicles

    def _member(self, vehicle_id: str) -> FleetMember:
        try:
            return self.members[vehicle_id]
        except KeyError:
            raise UnknownVehicleId(vehicle_id, sorted(self.members)) from None

    async def _command(self, vehicle_id: str, verb: str, by: str) -> None:
        """One vehicle command, confirmed by the vehicle, and an event either way (who asked, what came
        of it)."""
        member = self._member(vehicle_id)
        vehicle = self.fleet.vehicles.get(member.sysid)
        error: str | None = None
        try:
            if vehicle is None or not vehicle.state.link_alive:
                raise ControlError(ErrorCode.VEHICLE_ERROR, f"{vehicle_id} has no link (not heard, or lost): "
                                   f"cannot {verb}")
            try:
                async with asyncio.timeout(self.settings.vehicle_command_timeout_s):
                    await _VEHICLE_VERBS[verb](vehicle)
            except TimeoutError:
                raise ControlError(ErrorCode.VEHICLE_ERROR, f"{vehicle_id} did not confirm {verb} within "
                                   f"{self.settings.vehicle_command_timeout_s:g} s") from None
            except VehicleError as e:
                raise ControlError(ErrorCode.VEHICLE_ERROR, f"{vehicle_id} {verb}: {e}") from e
        except ControlError as e:
            error = e.message
            raise
        finally:
            await self.store.append_event("vehicle", vehicle_id, f"operator.{verb}",
                                          {"by": by, "ok": error is None, "error": error})

    async def rtl_vehicle(self, args: c.VehicleArgs, by: str) -> Any:
        await self._command(args.vehicle_id, "rtl", by)
        return {"vehicle_id": args.vehicle_id, "done": "rtl"}

    async def land_vehicle(self, args: c.VehicleArgs, by: str) -> Any:
        await self._command(args.vehicle_id, "land", by)
        return {"vehicle_id": args.vehicle_id, "done": "land"}

    async def pause_vehicle(self, args: c.VehicleArgs, by: str) -> Any:
        await self._command(args.vehicle_id, "pause", by)
        return {"vehicle_id": args.vehicle_id, "done": "pause"}

    async def resume_vehicle(self, args: c.VehicleArgs, by: str) -> Any:
        await self._command(args.vehicle_id, "resume", by)
        return {"vehicle_id": args.vehicle_id, "done": "resume"}

    async def ground_vehicle(self, args: c.GroundArgs, by: str) -> Any:
        record = await self.operator.ground(args.vehicle_id, reason=args.reason, by=by)
        return {"vehicle_id": record.vehicle_id, "grounded": record.grounded}

    async def unground_vehicle(self, args: c.VehicleArgs, by: str) -> Any:
        record = await self.operator.unground(args.vehicle_id, by=by)
        return {"vehicle_id": record.vehicle_id, "grounded": record.grounded}

    async def _fleet(self, verb: str, by: str) -> Any:
        """The verb on every vehicle under way (armed), at once; those on the ground, and those never
        heard, are left alone. A vehicle whose link is lost fails the command: it may be flying."""
        outcome: dict[str, str] = {}
        targets = []
        for member in self.members.values():
            vehicle = self.fleet.vehicles.get(member.sysid)
            if vehicle is None:  # not in service (never heard since the start): nothing to call back
                outcome[member.vehicle_id] = "skipped: never heard"
            elif not vehicle.state.link_alive:  # it may be in the air: the operator must know
                outcome[member.vehicle_id] = "failed: link lost"
            elif not vehicle.state.armed:
                outcome[member.vehicle_id] = "skipped: on the ground"
            else:
                targets.append(member.vehicle_id)

        async def one(vehicle_id: str) -> None:
            try:
                await self._command(vehicle_id, verb, by)
                outcome[vehicle_id] = "ok"
            except ControlError as e:
                outcome[vehicle_id] = f"failed: {e.message}"

        async with asyncio.TaskGroup() as group:
            for vehicle_id in targets:
                group.create_task(one(vehicle_id), name=f"control-{verb}-{vehicle_id}")
        await self.store.append_event("service", "fleet", f"operator.fleet_{verb}", {"by": by, "outcome": outcome})
        failed = sorted(v for v, o in outcome.items() if o.startswith("failed"))
        result = {"verb": verb, "vehicles": dict(sorted(outcome.items()))}
        if failed:
            raise ControlError(ErrorCode.PARTIAL, f"fleet {verb}: {len(failed)} of {len(outcome)} vehicles failed "
                               f"({', '.join(f'{v} {outcome[v]}' for v in failed)})", result=result)
        return result

    async def rtl_fleet(self, args: c.NoArgs, by: str) -> Any:
        return await self._fleet("rtl", by)

    async def land_fleet(self, args: c.NoArgs, by: str) -> Any:
        return await self._fleet("land", by)

    async def pause_fleet(self, args: c.NoArgs, by: str) -> Any:
        return await self._fleet("pause", by)

    # -- zones

    def _window(self, args: c.ZoneWindow) -> dict[str, Any]:
        now = self.clock.now()
        try:
            from_s = parse_when(args.active_from, now).timestamp() if args.active_from else None
            until_s = parse_when(args.until, now).timestamp() if args.until else None
        except ValueError as e:
            raise ControlError(ErrorCode.BAD_ARGS, str(e)) from None
        if until_s is not None and until_s <= max(from_s or now.timestamp(), now.timestamp()):
            raise ControlError(ErrorCode.BAD_ARGS, f"--until {args.until} is not in the future")
        return {"floor_m": args.floor_m, "ceiling_m": math.inf if args.ceiling_m is None else args.ceiling_m,
                "active_from_s": from_s, "active_until_s": until_s}

    async def _add(self, zones: list[NoFlyZone], by: str) -> Any:
        for zone in zones:
            if zone.zone_id in self.zones.zones:
                raise ControlError(ErrorCode.CONFLICT, f"zone id {zone.zone_id!r} is taken")
        added: list[ZoneInfo] = []
        changed = 0
        for zone in zones:
            try:
                changed += await self.operator.add_zone(zone, by=by)
            except ValueError as e:  # taken after all (a zone the book did not know)
                raise ControlError(ErrorCode.CONFLICT, f"zone {zone.zone_id!r}: {e}") from e
            self.zones.added(zone)
            added.append(self.zones.info(zone))
        return {"zones": [z.model_dump(mode="json") for z in added], "prices_changed": changed}

    async def add_zone_circle(self, args: c.CircleZoneArgs, by: str) -> Any:
        x_m, y_m = self.site.frame.to_local(args.lat_deg, args.lon_deg)
        try:
            zone = NoFlyZone.make_circle(args.zone_id or self.zones.next_id(), args.reason, x_m, y_m, args.radius_m,
                                         **self._window(args))
        except ValueError as e:
            raise ControlError(ErrorCode.BAD_ARGS, str(e)) from None
        return await self._add([zone], by)

    async def add_zone_geojson(self, args: c.GeojsonZoneArgs, by: str) -> Any:
        try:
            zones = zones_from_geojson(self.site, args.geojson, default_id=args.zone_id, next_id=self.zones.next_id,
                                       common={"reason": args.reason, **self._window(args)})
        except ValueError as e:
            raise ControlError(ErrorCode.BAD_ARGS, f"GeoJSON: {e}") from None
        return await self._add(zones, by)

    async def remove_zone(self, args: c.ZoneIdArgs, by: str) -> Any:
        changed = await self.operator.remove_zone(args.zone_id, by=by)
        self.zones.removed(args.zone_id)
        return {"zone_id": args.zone_id, "prices_changed": changed}

    # -- dispatch

    async def pause_dispatch(self, args: c.NoArgs, by: str) -> Any:
        await self.operator.pause_dispatch(by=by)
        return {"dispatch_paused": True}

    async def resume_dispatch(self, args: c.NoArgs, by: str) -> Any:
        await self.operator.resume_dispatch(by=by)
        return {"dispatch_paused": False}
