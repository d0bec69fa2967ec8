"""A scenario's timeline: each action at its simulated time (or once its vehicle or order is in
flight), done through the service's Operator (zones, cancel, ground, dispatch), by the recipient on
the bus (a PIN entered at the door) or as a fault in the built-in simulator (link loss, gripper jam,
battery drop, GPS loss, refusal to arm, wind).

Every action ends with an outcome: done (and when), skipped (the backend cannot do it: real PX4 takes
no injected faults from us) or failed (refused, or its vehicle or order never flew in time). A failed
action fails the run's JUnit report; it does not stop the run.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import shapely

from fleetctl.demo.run import RunContext
from fleetctl.errors import FleetError
from fleetctl.scenario.model import (
    FAULTS,
    XY,
    Action,
    AddZone,
    BatteryDrop,
    Cancel,
    Dispatch,
    EnterPin,
    GpsLoss,
    GripperJam,
    Ground,
    LinkLoss,
    RefuseArm,
    RemoveZone,
    Wind,
)
from planner.airspace import NoFlyZone
from planner.errors import PlanningError
from planner.site import Site

#: A drone higher than this above home is flying (the cruise climb has begun).
FLYING_ALT_M = 10.0
#: A robot faster than this is under way.
ROBOT_MOVING_M_S = 0.3
#: How often an in_flight action looks (wall seconds).
POLL_S = 0.1
#: Why real PX4 SITL cannot take each fault from a scenario run.
PX4_CANNOT = {
    "link_loss": "PX4 SITL: the launcher cannot cut one instance's MAVLink link",
    "gripper_jam": "PX4 SITL: no gripper fault injection (SIH has no gripper to jam)",
    "battery_drop": "PX4 SITL: the simulated battery cannot be drained from outside",
    "gps_loss": "PX4 SITL: GPS failure injection (SYS_FAILURE_EN) is not wired into scenario runs",
    "refuse_arm": "PX4 SITL: arming cannot be made to fail from outside",
    "wind": "PX4 SITL: SIH wind cannot be set at run time",
}

Status = Literal["pending", "done", "skipped", "failed"]


@dataclass
class Outcome:
    index: int
    label: str
    status: Status = "pending"
    at_s: float | None = None  # when it was done (simulated seconds after the start)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "action": self.label, "status": self.status,
                "at_s": None if self.at_s is None else round(self.at_s, 1), "detail": self.detail}


def label(action: Action) -> str:
    """The action in a few words: 't=120s link_loss quad-1 (duration_s=60)'."""
    when = f"t={action.at_s:g}s" + (" in flight" if action.when == "in_flight" else "")
    target = ""
    if isinstance(action, LinkLoss | GripperJam | BatteryDrop | GpsLoss | RefuseArm):
        target = action.vehicle or f"carrier of {action.carrying}"
    elif isinstance(action, Cancel | EnterPin):
        target = action.order
    elif isinstance(action, Ground):
        target = action.vehicle
    elif isinstance(action, AddZone | RemoveZone):
        target = action.zone_id
    elif isinstance(action, Wind):
        target = action.vehicle or "all vehicles"
    shown = {k: v for k, v in action.model_dump(exclude={"at_s", "when", "within_s", "do", "vehicle", "carrying",
                                                          "order", "zone_id", "circle", "polygon_xy_m", "pin"}).items()
             if v is not None}
    extra = f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""
    return f"{when} {action.do} {target}{extra}".replace("  ", " ")


def skip_reason(action: Action, backend: str) -> str | None:
    """Why `backend` cannot do `action` (None: it can)."""
    if backend == "px4" and action.do in FAULTS:
        return PX4_CANNOT[action.do]
    return None


def zone_of(action: AddZone, site: Site) -> NoFlyZone:
    """The zone an add_zone action names, in the site's frame. ValueError for an unknown drop point
    or a shape that is not a valid polygon."""
    ceiling = math.inf if action.ceiling_m is None else action.ceiling_m
    if action.circle is not None:
        x, y = point_of(action.circle, site)
        return NoFlyZone.make_circle(action.zone_id, action.reason, x, y, action.circle.radius_m,
                                     floor_m=action.floor_m, ceiling_m=ceiling)
    assert action.polygon_xy_m is not None
    return NoFlyZone(action.zone_id, action.reason, shapely.Polygon(action.polygon_xy_m), floor_m=action.floor_m,
                     ceiling_m=ceiling)


def point_of(where: XY, site: Site) -> tuple[float, float]:
    if where.drop_point is not None:
        point = site.drop_points.get(where.drop_point)
        if point is None:
            raise ValueError(f"site {site.name!r} has no drop point {where.drop_point!r}")
        return point.xy_m
    if where.lat_deg is not None and where.lon_deg is not None:
        x, y = site.frame.to_local(where.lat_deg, where.lon_deg)
        return float(x), float(y)
    assert where.x_m is not None
    assert where.y_m is not None
    return where.x_m, where.y_m


class Timeline:
    """Runs the actions of one scenario (`run`, as the run's hook) and keeps their outcomes."""

    def __init__(self, actions: Sequence[Action], order_count: int, *, pins: Mapping[str, str] | None = None) -> None:
        self.actions = list(actions)
        self.outcomes = [Outcome(i, label(a)) for i, a in enumerate(self.actions)]
        self._order_count = order_count
        self._pins = dict(pins or {})  # order id -> the PIN its recipient was given

    async def run(self, ctx: RunContext) -> None:
        async with asyncio.TaskGroup() as group:
            for i, action in enumerate(self.actions):
                group.create_task(self._one(ctx, action, self.outcomes[i]), name=f"scenario-action-{i}")

    async def _one(self, ctx: RunContext, action: Action, outcome: Outcome) -> None:
        await ctx.clock.sleep(action.at_s - self._elapsed_s(ctx))
        reason = skip_reason(action, ctx.sim.backend)
        if reason is not None:
            outcome.status, outcome.detail = "skipped", reason
            return
        try:
            if isinstance(action, EnterPin):
                vehicle = await self._at_the_door(ctx, action)
                await ctx.clock.sleep(action.after_s)
            else:
                vehicle = await self._when_flying(ctx, action) if action.when == "in_flight" else None
            await self._do(ctx, action, vehicle)
        except (FleetError, PlanningError, ValueError) as e:
            outcome.status, outcome.detail = "failed", f"{type(e).__name__}: {e}"
            return
        outcome.status, outcome.at_s = "done", self._elapsed_s(ctx)
        if vehicle is not None:
            outcome.detail = f"on {vehicle}"

    def _elapsed_s(self, ctx: RunContext) -> float:
        return (ctx.clock.now() - ctx.start).total_seconds()

    # ---- in flight ----

    async def _when_flying(self, ctx: RunContext, action: Action) -> str | None:
        """Wait until the action's vehicle flies (or its order is in transit on a flying vehicle);
        the vehicle then (None for an action on no vehicle). NotInFlight when it did not within
        `within_s`, or every order has ended."""
        deadline_s = self._elapsed_s(ctx) + action.within_s
        while True:
            vehicle = self._flying(ctx, action)
            if vehicle is not None:
                return vehicle or None
            if self._elapsed_s(ctx) > deadline_s:
                raise NotInFlight(f"not in flight within {action.within_s:g} s")
            if len(ctx.shop.orders) >= self._order_count and ctx.shop.all_terminal():
                raise NotInFlight("every order had ended before it was in flight")
            await asyncio.sleep(POLL_S)

    async def _at_the_door(self, ctx: RunContext, action: EnterPin) -> str | None:
        """Until the order's robot waits for the PIN (the order is delivering); its vehicle.
        NotInFlight when it did not within `within_s`, or the order ended first."""
        deadline_s = self._elapsed_s(ctx) + action.within_s
        while True:
            view = ctx.shop.orders.get(action.order)
            if view is not None and view.state == "delivering":
                return view.vehicle_id
            if view is not None and view.terminal:
                raise NotInFlight(f"order {action.order} ended {view.state} before its robot was at the door")
            if self._elapsed_s(ctx) > deadline_s:
                raise NotInFlight(f"no robot at the door within {action.within_s:g} s")
            await asyncio.sleep(POLL_S)

    def _flying(self, ctx: RunContext, action: Action) -> str | None:
        """The flying vehicle the action is about ("" for an order in transit, no vehicle needed),
        or None while it is not flying."""
        order_id = getattr(action, "carrying", None) or getattr(action, "order", None)
        if order_id is not None:
            view = ctx.shop.orders.get(order_id)
            if view is None or view.state != "in_transit" or view.vehicle_id is None:
                return None
            return view.vehicle_id if self._moving(ctx, view.vehicle_id) else None
        vehicle_id = getattr(action, "vehicle", None)
        if vehicle_id is None:
            return ""
        return vehicle_id if self._moving(ctx, vehicle_id) else None

    @staticmethod
    def _moving(ctx: RunContext, vehicle_id: str) -> bool:
        member = ctx.members.get(vehicle_id)
        vehicle = ctx.running.fleet.vehicles.get(member.sysid) if member else None
        if member is None or vehicle is None or not vehicle.state.armed:
            return False
        state = vehicle.state
        if member.kind == "drone":
            return state.position is not None and state.position.alt_rel_m > FLYING_ALT_M
        v = state.velocity
        return v is not None and math.hypot(v.north_m_s, v.east_m_s) > ROBOT_MOVING_M_S

    # ---- doing it ----

    async def _do(self, ctx: RunContext, action: Action, flying: str | None) -> None:
        operator = ctx.running.operator
        if operator is None:
            raise FleetError("the service has no operator interface")
        by = "scenario"
        if isinstance(action, AddZone):
            await operator.add_zone(zone_of(action, ctx.site), by=by)
        elif isinstance(action, RemoveZone):
            await operator.remove_zone(action.zone_id, by=by)
        elif isinstance(action, Cancel):
            await operator.cancel(action.order, reason=action.reason, by=by)
        elif isinstance(action, Ground):
            if action.do == "ground":
                await operator.ground(action.vehicle, reason="grounded by the scenario", by=by)
            else:
                await operator.unground(action.vehicle, by=by)
        elif isinstance(action, EnterPin):
            pin = action.pin or self._pins.get(action.order)
            if pin is None:
                raise FleetError(f"order {action.order} has no PIN to enter")
            await ctx.shop.send_pin(action.order, pin)
        elif isinstance(action, Dispatch):
            await (operator.pause_dispatch(by=by) if action.do == "pause_dispatch" else operator.resume_dispatch(by=by))
        elif isinstance(action, Wind):
            targets = [action.vehicle] if action.vehicle else list(ctx.members)
            for vid in targets:
                await self._fault(ctx, vid, "wind_gust", speed_m_s=action.speed_m_s, from_deg=action.from_deg,
                                  duration_s=action.duration_s)
        else:
            target = flying or action.vehicle
            assert target is not None  # a vehicle is named, or found in flight
            if isinstance(action, LinkLoss):
                await self._fault(ctx, target, "link_loss", duration_s=action.duration_s)
            elif isinstance(action, GripperJam):
                await self._fault(ctx, target, "gripper_jam", on=action.on)
            elif isinstance(action, BatteryDrop):
                await self._fault(ctx, target, "battery_drop", percent=action.percent)
            elif isinstance(action, GpsLoss):
                await self._fault(ctx, target, "gps_loss", duration_s=action.duration_s)
            else:
                await self._fault(ctx, target, "refuse_arm", reason=action.reason if action.on else None)

    @staticmethod
    async def _fault(ctx: RunContext, vehicle_id: str, fault: str, **args: Any) -> None:
        member = ctx.members.get(vehicle_id)
        if member is None:
            raise FleetError(f"no vehicle {vehicle_id!r} in this run")
        await ctx.sim.inject(member.sysid, fault, **args)


class NotInFlight(FleetError):
    """An in_flight action's vehicle or order never flew in the time it was given."""
