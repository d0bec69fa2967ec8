"""Whether the site and its fleet can serve an order, with a machine-readable reason when not.

Intake must keep up with a busy order queue (a thousand orders a second on one core), so nothing here
plans per order: what a depot can reach is priced once per (depot, drop-off, vehicle model) and
cached (named drop points are a small set; free lat/lon drop-offs are cached too). Dispatch plans
the real sortie later, with the zones and wind of its departure time.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
from pydantic import ValidationError

from fleetctl.errors import OrderRejected
from fleetctl.orders.model import Handoff, LatLon, Order, SizeClass
from fleetctl.trip import drone_trip_on, robot_trip_on
from planner.errors import EnergyInfeasible, NoRoute, PayloadTooHeavy, PlanningError
from planner.flight import FlightPlanner, plan_flight
from planner.site import Site
from planner.vehicle_model import VehicleKind, VehicleModel
from planner.wind import Wind

MAX_PAYLOAD_BYTES = 16 * 1024  # an order is a few hundred bytes; anything this big is an attack or a bug
ROBOT_WALK_M = 30.0  # how far off the sidewalk network a robot drop-off may lie
MAX_WINDOW_AHEAD = timedelta(days=7)
MIN_WINDOW = timedelta(minutes=5)
_PAYLOAD_TOLERANCE_KG = 0.01
_KINDS: tuple[VehicleKind, ...] = ("drone", "robot")
# Which vehicle kinds carry which parcel size, and which hand-offs each kind can make.
_SIZES: dict[VehicleKind, frozenset[SizeClass]] = {
    "drone": frozenset({SizeClass.SMALL}),
    "robot": frozenset({SizeClass.SMALL, SizeClass.MEDIUM}),
}
_HANDOFFS: dict[VehicleKind, frozenset[Handoff]] = {
    "drone": frozenset({Handoff.DRONE_RELEASE, Handoff.LOCKER}),
    "robot": frozenset({Handoff.LOCKER, Handoff.PIN}),
}


class RejectReason(enum.StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_SITE = "unknown_site"
    UNKNOWN_PLACE = "unknown_place"
    OUTSIDE_OPERATING_AREA = "outside_operating_area"
    DROPOFF_UNREACHABLE = "dropoff_unreachable"
    TOO_HEAVY_FOR_FLEET = "too_heavy_for_fleet"
    TOO_LARGE_FOR_FLEET = "too_large_for_fleet"
    HANDOFF_UNSUPPORTED = "handoff_unsupported"
    HANDOFF_PIN_MISSING = "handoff_pin_missing"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIME_WINDOW = "bad_time_window"
    ID_CONFLICT = "id_conflict"


@dataclass(frozen=True)
class Acceptance:
    """A valid order: who can serve it, from where, and anything the producer should know."""

    order: Order
    kinds: tuple[VehicleKind, ...]
    depot: str
    dropoff_xy_m: tuple[float, float]
    note: str = ""


@dataclass(frozen=True)
class _Reach:
    """What one vehicle model can do between one depot and one drop-off: the heaviest parcel it
    can carry there and back above its reserve (None: it cannot get there at all), and why not."""

    max_payload_kg: float | None
    why_not: str = ""


def parse_order(raw: bytes | str | Mapping[str, Any]) -> Order:
    """Bytes or text of JSON (or a decoded object) -> Order; OrderRejected(malformed) otherwise."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise OrderRejected(RejectReason.MALFORMED, f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise OrderRejected(RejectReason.MALFORMED, f"not JSON: {e}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise OrderRejected(RejectReason.MALFORMED, f"an order is a JSON object, not {type(data).__name__}")
    try:
        return Order.model_validate(data)
    except ValidationError as e:
        fields = {".".join(map(str, err["loc"])) or "order": err["msg"] for err in e.errors()}
        summary = "; ".join(f"{k}: {v}" for k, v in list(fields.items())[:5])
        raise OrderRejected(RejectReason.MALFORMED, summary, {"errors": fields}) from None


class OrderValidator:
    """Checks orders against one site and its fleet. Pure and synchronous; the first order to a
    new drop-off pays for its planning (tens of ms), the rest are dictionary lookups."""

    def __init__(self, site: Site, *, site_id: str | None = None, wind: Wind | None = None,
                 robot_walk_m: float = ROBOT_WALK_M) -> None:
        self.site = site
        self.site_id = site_id or site.name  # the name orders use (a deployment may rename its site)
        self._wind = wind or Wind(0.0, 0.0)
        self._robot_walk_m = robot_walk_m
        fleet_models = {entry.model for entry in site.fleet}
        self._models: tuple[VehicleModel, ...] = tuple(
            site.vehicle_model(name) for name in sorted(fleet_models)) or tuple(site.vehicle_models.values())
        self._flight = FlightPlanner(site.airspace, max_alt_m=max(site.cruise_layers_m))
        self._reach: dict[tuple[str, tuple[float, float], str], _Reach] = {}
        self._max_payload_kg = max((m.max_payload_kg for m in self._models), default=0.0)

    def validate(self, order: Order, now: datetime) -> Acceptance:
        """Acceptance, or OrderRejected with the first reason that applies."""
        if order.site != self.site_id:
            raise OrderRejected(RejectReason.UNKNOWN_SITE, f"this service runs site {self.site_id!r}, "
                                f"not {order.site!r}", {"site": self.site_id})
        self._check_window(order, now)
        xy, drop_ok = self._dropoff(order)
        if order.weight_kg > self._max_payload_kg + 1e-9:
            raise OrderRejected(RejectReason.TOO_HEAVY_FOR_FLEET, f"{order.weight_kg} kg is more than any vehicle of "
                                f"the fleet carries (at most {self._max_payload_kg} kg)",
                                {"max_payload_kg": self._max_payload_kg})
        kinds = [k for k in _KINDS if any(m.kind == k for m in self._models)]
        sized = [k for k in kinds if order.size in _SIZES[k]]
        if not sized:
            raise OrderRejected(RejectReason.TOO_LARGE_FOR_FLEET, f"a {order.size} parcel fits none of the fleet's "
                                f"vehicles ({', '.join(kinds)})")
        if order.handoff == Handoff.PIN and order.handoff_pin is None:
            raise OrderRejected(RejectReason.HANDOFF_PIN_MISSING, "a hand-off by PIN needs the recipient's PIN in "
                                "handoff_pin (4 to 8 digits), to check the one the recipient enters")
        handing = [k for k in sized if order.handoff in _HANDOFFS[k]]
        if not handing:
            raise OrderRejected(RejectReason.HANDOFF_UNSUPPORTED, f"hand-off {order.handoff} is not made by the "
                                f"vehicles that carry a {order.size} parcel ({', '.join(sized)})")
        reachable = {k: self._unreachable(k, xy, drop_ok) for k in handing}
        reachable_kinds = [k for k, why in reachable.items() if why is None]
        if not reachable_kinds:
            raise OrderRejected(RejectReason.DROPOFF_UNREACHABLE, "no vehicle kind can reach the drop-off: "
                                + "; ".join(f"{k}s: {why}" for k, why in reachable.items()),
                                {k: why for k, why in reachable.items()})
        depots = [order.pickup_depot] if order.pickup_depot else self._depots_by_distance(xy)
        if order.pickup_depot and order.pickup_depot not in self.site.depots:
            raise OrderRejected(RejectReason.UNKNOWN_PLACE, f"no depot {order.pickup_depot!r} "
                                f"(depots: {', '.join(self.site.depots)})", {"depots": list(self.site.depots)})
        refusals: list[str] = []
        for depot in depots:
            serving: list[VehicleKind] = []
            for kind in reachable_kinds:
                why = self._carry(depot, xy, kind, order.weight_kg)
                if why is None:
                    serving.append(kind)
                else:
                    refusals.append(f"{kind}s from {depot}: {why}")
            if serving:
                note = "" if len(serving) > 1 or len(kinds) == 1 else self._only_note(serving[0], reachable, refusals)
                return Acceptance(order, tuple(serving), depot, xy, note)
        raise OrderRejected(RejectReason.OUT_OF_RANGE, "; ".join(refusals), {"depots": depots})

    # ---- the parts ----

    def _check_window(self, order: Order, now: datetime) -> None:
        earliest, latest = order.window.earliest, order.window.latest
        problem = ""
        if latest <= earliest:
            problem = "latest is not after earliest"
        elif latest - earliest < MIN_WINDOW:
            problem = f"the window is shorter than {MIN_WINDOW}"
        elif latest <= now:
            problem = "the window has already closed"
        elif earliest > now + MAX_WINDOW_AHEAD:
            problem = f"the window opens more than {MAX_WINDOW_AHEAD.days} days ahead"
        if problem:
            raise OrderRejected(RejectReason.BAD_TIME_WINDOW, problem,
                                {"earliest": earliest.isoformat(), "latest": latest.isoformat()})

    def _dropoff(self, order: Order) -> tuple[tuple[float, float], dict[VehicleKind, bool]]:
        """The drop-off's local position, and which kinds the drop point admits (a free point: both)."""
        site = self.site
        if isinstance(order.dropoff, LatLon):
            x, y = site.frame.to_local(order.dropoff.lat_deg, order.dropoff.lon_deg)
            xy = (float(x), float(y))
            allowed: dict[VehicleKind, bool] = {"drone": True, "robot": True}
        else:
            point = site.drop_points.get(order.dropoff)
            if point is None:
                raise OrderRejected(RejectReason.UNKNOWN_PLACE, f"no drop point {order.dropoff!r}",
                                    {"dropoff": order.dropoff})
            xy = point.xy_m
            allowed = {"drone": point.drone_ok, "robot": point.robot_ok}
        if not site.area.covers(_point(xy)):
            raise OrderRejected(RejectReason.OUTSIDE_OPERATING_AREA, "the drop-off lies outside the operating area")
        return xy, allowed

    def _unreachable(self, kind: VehicleKind, xy: tuple[float, float], allowed: Mapping[VehicleKind, bool]) -> str | None:
        if not allowed[kind]:
            return f"the drop point does not admit {kind}s"
        if kind == "drone":
            zone = self.site.airspace.zone_at(xy, self.site.cruise_layers_m[0], None, buffered=False)
            if zone is None:
                zone = self.site.airspace.zone_at(xy, 0.0, None, buffered=False)
            if zone is not None:
                return f"inside no-fly zone {zone.zone_id} ({zone.reason})"
            return None
        try:
            self.site.sidewalks.snap(xy, max_walk_m=self._robot_walk_m)
        except NoRoute:
            return f"more than {self._robot_walk_m:.0f} m off the sidewalk network"
        return None

    def _carry(self, depot: str, xy: tuple[float, float], kind: VehicleKind, weight_kg: float) -> str | None:
        """None if some model of `kind` carries `weight_kg` from `depot` to `xy` and back, else why not."""
        whys = []
        for model in self._models:
            if model.kind != kind:
                continue
            reach = self._reach_of(depot, xy, model)
            if reach.max_payload_kg is not None and weight_kg <= reach.max_payload_kg + _PAYLOAD_TOLERANCE_KG:
                return None
            whys.append(reach.why_not or f"{model.name} carries at most {reach.max_payload_kg:.2f} kg that far")
        return "; ".join(whys) or f"no {kind} in the fleet"

    def _reach_of(self, depot: str, xy: tuple[float, float], model: VehicleModel) -> _Reach:
        key = (depot, (round(xy[0], 1), round(xy[1], 1)), model.name)
        found = self._reach.get(key)
        if found is None:
            found = self._reach[key] = self._price(self.site.depot(depot).xy_m, xy, model)
        return found

    def _price(self, start: tuple[float, float], goal: tuple[float, float], model: VehicleModel) -> _Reach:
        """The heaviest feasible parcel, by bisection over the (monotonic) energy of the trip."""
        try:
            if model.kind == "drone":
                east, north = self._wind.east_north_m_s
                plan = plan_flight(self._flight, start, goal, model, self.site.cruise_layers_m[0],
                                   wind_east_m_s=east, wind_north_m_s=north)

                def feasible(payload_kg: float) -> bool:
                    return _ok(lambda: drone_trip_on(plan, model, payload_kg=payload_kg, wind=self._wind))
            else:
                route = self.site.sidewalks.route(start, goal, max_walk_m=self._robot_walk_m)

                def feasible(payload_kg: float) -> bool:
                    return _ok(lambda: robot_trip_on(route, model, payload_kg=payload_kg))
        except PlanningError as e:
            return _Reach(None, str(e))
        if not feasible(0.0):
            return _Reach(None, f"{model.name} cannot fly/drive there and back above its reserve even empty")
        if feasible(model.max_payload_kg):
            return _Reach(model.max_payload_kg)
        low, high = 0.0, model.max_payload_kg
        while high - low > _PAYLOAD_TOLERANCE_KG:
            mid = (low + high) / 2
            low, high = (mid, high) if feasible(mid) else (low, mid)
        return _Reach(low)

    def _depots_by_distance(self, xy: tuple[float, float]) -> list[str]:
        return sorted(self.site.depots, key=lambda d: math.dist(self.site.depots[d].xy_m, xy))

    @staticmethod
    def _only_note(kind: VehicleKind, reachable: Mapping[VehicleKind, str | None], refusals: list[str]) -> str:
        other: VehicleKind = "robot" if kind == "drone" else "drone"
        why = reachable.get(other) or next((r for r in refusals if r.startswith(other)), "")
        return f"only {kind}s can serve it" + (f" ({other}s: {why})" if why else "")


def _ok(trip: Any) -> bool:
    try:
        trip()
    except (EnergyInfeasible, PayloadTooHeavy):
        return False
    return True


def _point(xy: tuple[float, float]) -> shapely.Point:
    return shapely.Point(xy)
