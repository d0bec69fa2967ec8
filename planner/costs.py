"""Trip costs for the dispatch solver: depot x drop point, per vehicle model, cached.

`SiteCosts(site)` implements `planner.assign.Costs`. What does not depend on the parcel is kept:

- drones: one `FlightPlan` per (model, depot, drop-off) at the default cruise layer, from one
  `FlightPlanner` over the site's airspace (every zone whatever its time window, every band up to
  the highest cruise layer, as `fleetctl.nearest_rule` plans);
- robots: one `SidewalkRoute` per (depot, drop-off), all named drop points of a depot from one
  single-source search (`SidewalkGraph.routes_from`); the route does not depend on the model.

Energy depends on the payload, so `trip` prices the stored plan or route at the job's weight
(cached per weight) with the same calls as fleetctl's `drone_trip_on` / `robot_trip_on`: out with
the parcel (a drone hovers `DRONE_RELEASE_HOVER_S` to release it, a robot waits
`ROBOT_HANDOFF_WAIT_S` for the hand-off), back empty, the reserve checked on a full battery. As
there, a drone's `outbound_s` includes the climb, the descent and the release hover; a robot's
excludes the wait.

Named drop points are filled lazily or all at once by `warm()`; a drop-off given as a coordinate
(`job.drop` "xy:E,N") is priced on demand and cached under that key. `add_zone` / `remove_zone`
change the airspace and recompute only the drone entries the zone can change: on adding, those
whose path meets the buffered zone (drop-offs inside it become infeasible); on removing, those
whose ellipse of equal length (the points p with |depot p| + |p drop| <= the path length, where
any shorter path must run) meets it, and the failed ones. Zones do not close sidewalks (neither
the site nor the service does), so robots are unaffected; after closing sidewalk edges call
`sidewalks_changed()`.

Not thread-safe: one instance per thread, or a lock around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely import affinity

from planner.airspace import NoFlyZone, circumscribed_circle
from planner.assign import Costs, Job, TripCost
from planner.energy import check_feasible, drone_leg_energy, drone_path_energy, robot_leg_energy
from planner.errors import InsideNoFlyZone, NoRoute, PlanningError, UnknownZone, WindLimitExceeded
from planner.flight import FlightPlan, FlightPlanner, plan_flight
from planner.geo import FloatArray
from planner.sidewalk import SidewalkGraph, SidewalkRoute
from planner.site import Site
from planner.vehicle_model import VehicleModel
from planner.wind import Wind

#: Time a drone hovers over the drop point while the winch lowers and releases the parcel.
DRONE_RELEASE_HOVER_S = 30.0
#: Time a robot waits at the door for the recipient (the hand-off window it plans energy for).
ROBOT_HANDOFF_WAIT_S = 180.0
#: Prices kept per plan or route (one per distinct parcel weight and layer); then the cache restarts.
_MAX_PRICES_PER_ENTRY = 256
#: Zone-change failures worth another try: the path depends on the zones.
_ZONE_DEPENDENT = (NoRoute, InsideNoFlyZone, WindLimitExceeded)

Progress = Callable[[int, int], None]
_UNIT_CIRCLE = circumscribed_circle(0.0, 0.0, 1.0, sides=32)


def drone_trip_cost(
    points: FloatArray, model: VehicleModel, *, payload_kg: float, wind: Wind, cruise_alt_m: float
) -> TripCost:
    """A drone's round trip along a path (N, 2) at a cruise layer: climb, cruise with the wind per
    segment, descend, hover to release the parcel, and the same back empty. The math of
    `fleetctl.trip.drone_trip_on`; raises EnergyInfeasible, WindLimitExceeded, PayloadTooHeavy."""
    out = drone_path_energy(
        model,
        points,
        payload_kg=payload_kg,
        climb_m=cruise_alt_m,
        descent_m=cruise_alt_m,
        wind_speed_m_s=wind.speed_m_s,
        wind_from_deg=wind.from_deg,
    )
    out = out + drone_leg_energy(model, distance_m=0.0, payload_kg=payload_kg, hover_s=DRONE_RELEASE_HOVER_S)
    back = drone_path_energy(
        model,
        points[::-1],
        payload_kg=0.0,
        climb_m=cruise_alt_m,
        descent_m=cruise_alt_m,
        wind_speed_m_s=wind.speed_m_s,
        wind_from_deg=wind.from_deg,
    )
    total = out + back
    check_feasible(model, total)
    return TripCost(
        outbound_s=out.duration_s,
        round_trip_s=total.duration_s,
        energy_wh=total.energy_wh,
        cruise_alt_m=cruise_alt_m,
    )


def robot_trip_cost(length_m: float, model: VehicleModel, *, payload_kg: float) -> TripCost:
    """A robot's round trip over a route of `length_m`: out with the parcel, the hand-off wait, back
    empty. The math of `fleetctl.trip.robot_trip_on`; raises EnergyInfeasible, PayloadTooHeavy."""
    out = robot_leg_energy(model, distance_m=length_m, payload_kg=payload_kg, idle_s=ROBOT_HANDOFF_WAIT_S)
    back = robot_leg_energy(model, distance_m=length_m, payload_kg=0.0)
    total = out + back
    check_feasible(model, total)
    return TripCost(
        outbound_s=out.duration_s - ROBOT_HANDOFF_WAIT_S,
        round_trip_s=total.duration_s,
        energy_wh=total.energy_wh,
    )


@dataclass(eq=False)
class _Flight:
    """One (model, depot, drop-off) flight at the default layer, or why there is none."""

    start: tuple[float, float]
    goal: tuple[float, float]
    plan: FlightPlan | None
    error: PlanningError | None = None
    line: shapely.LineString | None = None
    prices: dict[tuple[float, float], TripCost | None] = field(default_factory=dict)

    def path_line(self) -> shapely.LineString | None:
        if self.plan is not None and self.line is None:
            self.line = shapely.LineString(self.plan.path.points)
        return self.line


@dataclass(eq=False)
class _Drive:
    """One (depot, drop-off) sidewalk route, or None."""

    route: SidewalkRoute | None
    prices: dict[tuple[VehicleModel, float], TripCost | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Drop:
    key: str
    xy: tuple[float, float]
    drone_ok: bool
    robot_ok: bool


class SiteCosts:
    """Trip costs by vehicle model, depot and job for one site (see the module docstring).

    `wind`: the wind all drone trips are priced in (None: calm). `layer_m`: the default cruise
    layer (None: the site's lowest). `robot_walk_m`: how far a robot's route may start or end off
    the sidewalk network (None: the graph's own limit, as `fleetctl.trip.robot_trip` routes).
    `sidewalks`: the robot network (None: `site.sidewalks`).
    """

    def __init__(
        self,
        site: Site,
        *,
        wind: Wind | None = None,
        layer_m: float | None = None,
        robot_walk_m: float | None = None,
        sidewalks: SidewalkGraph | None = None,
    ) -> None:
        self.site = site
        self.wind = Wind() if wind is None else wind
        self.layer_m = site.cruise_layers_m[0] if layer_m is None else float(layer_m)
        if not self.layer_m > 0:
            raise ValueError(f"layer_m must be > 0, got {layer_m}")
        self.max_layer_m = max(*site.cruise_layers_m, self.layer_m)
        self.robot_walk_m = robot_walk_m
        self._sidewalks = sidewalks
        self._airspace = site.airspace
        self._planner: FlightPlanner | None = None
        self._flights: dict[tuple[VehicleModel, str, str], _Flight] = {}
        self._drives: dict[tuple[str, str], _Drive] = {}
        self._routed_depots: set[str] = set()  # depots whose named drop points are all routed

    # ---- the solver's questions -----------------------------------------------------------

    def trip(self, model: VehicleModel, depot: str, job: Job) -> TripCost | None:
        """The sortie from `depot` to the job's drop-off and back at the job's weight, or None when
        `model` cannot make it: kind not in `job.kinds`, another pickup depot, payload above the
        model's limit, wind above its limit, a drop point that does not admit the kind, no path or
        route, or a round trip needing more than the battery holds above the reserve. UnknownPlace
        for a depot the site lacks, ValueError for a negative weight."""
        return self._price(model, depot, job, None)

    def layer_cost(self, model: VehicleModel, depot: str, job: Job, layer_m: float) -> TripCost | None:
        """`trip` for a drone at another cruise layer (the same horizontal path; climb, descent and
        their energy differ). For deconfliction; ValueError for a robot model or a layer above the
        highest one the paths avoid zones for (`max_layer_m`)."""
        if not model.is_drone:
            raise ValueError(f"layer_cost is for drones, {model.name!r} is a {model.kind}")
        if not 0 < layer_m <= self.max_layer_m:
            raise ValueError(f"layer_m must be in (0, {self.max_layer_m}] m, got {layer_m}")
        return self._price(model, depot, job, float(layer_m))

    def why_not(self, model: VehicleModel, depot: str, job: Job) -> str | None:
        """Why `trip` is None (for an operator or a solver's `unplaced` reason); None when it is not."""
        if self.trip(model, depot, job) is not None:
            return None
        if model.kind not in job.kinds:
            return f"the drop-off does not admit {model.kind}s"
        if job.depot is not None and job.depot != depot:
            return f"the parcel is at depot {job.depot}, not {depot}"
        if job.weight_kg > model.max_payload_kg:
            return f"{job.weight_kg:g} kg is above the {model.max_payload_kg:g} kg {model.name} carries"
        if self.wind.speed_m_s > model.max_wind_m_s:
            return (
                f"wind {self.wind.speed_m_s:.1f} m/s is above the {model.max_wind_m_s:g} m/s of {model.name}"
            )
        drop = self._drop(job)
        if drop is None:
            return f"unknown drop point {job.drop!r}"
        if not (drop.drone_ok if model.is_drone else drop.robot_ok):
            return f"drop point {job.drop} does not admit {model.kind}s"
        if model.is_drone:
            flight = self._flight(model, depot, drop)
            if flight.error is not None:
                return str(flight.error)
        elif self._drive(depot, drop).route is None:
            return f"no sidewalk route from {depot} to {job.drop}"
        return f"{model.name} cannot go there and back above its reserve with {job.weight_kg:g} kg"

    # ---- what is stored -------------------------------------------------------------------

    @property
    def flight_planner(self) -> FlightPlanner:
        """The planner every drone path comes from (built on first use, zones kept up to date)."""
        if self._planner is None:
            self._planner = FlightPlanner(self._airspace, max_alt_m=self.max_layer_m)
        return self._planner

    def flight_plan(self, model: VehicleModel, depot: str, job: Job) -> FlightPlan | None:
        """The stored plan at the default layer to the job's drop-off (None: no path)."""
        drop = self._drop(job)
        return None if drop is None else self._flight(model, depot, drop).plan

    def route(self, depot: str, job: Job) -> SidewalkRoute | None:
        """The stored sidewalk route to the job's drop-off (None: no route)."""
        drop = self._drop(job)
        return None if drop is None else self._drive(depot, drop).route

    def warm(self, progress: Progress | None = None) -> int:
        """Plan every (drone model, depot, drone_ok drop point) and route every (depot, robot_ok
        drop point) not planned yet; `progress(done, total)` after each step. Returns the count of
        entries (flights + routes) now stored for named drop points."""
        depots = list(self.site.depots)
        drones = [m for m in self.site.vehicle_models.values() if m.is_drone]
        has_robots = any(not m.is_drone for m in self.site.vehicle_models.values())
        points = self.site.drop_points
        by_kind = {
            "drone": [self._named(name) for name, d in points.items() if d.drone_ok],
            "robot": [self._named(name) for name, d in points.items() if d.robot_ok],
        }
        total = len(depots) * (len(drones) * len(by_kind["drone"]) + has_robots * len(by_kind["robot"]))
        done = 0
        if has_robots:
            for depot in depots:
                self._route_depot(depot)
                done += len(by_kind["robot"])
                if progress is not None:
                    progress(done, total)
        for model in drones:
            for depot in depots:
                for drop in by_kind["drone"]:
                    self._flight(model, depot, drop)
                    done += 1
                    if progress is not None:
                        progress(done, total)
        return done

    def matrix(
        self, model: VehicleModel, *, payload_kg: float = 0.0
    ) -> tuple[list[str], list[str], FloatArray]:
        """(depot names, drop point names, round_trip_s[depot, drop]) for `model` carrying
        `payload_kg` to every named drop point; np.inf where `trip` would be None."""
        depots = list(self.site.depots)
        drops = list(self.site.drop_points)
        out = np.full((len(depots), len(drops)), np.inf, dtype=np.float64)
        if payload_kg > model.max_payload_kg or self.wind.speed_m_s > model.max_wind_m_s:
            return depots, drops, out
        for i, depot in enumerate(depots):
            for j, name in enumerate(drops):
                cost = self._price_at(model, depot, self._named(name), payload_kg, None)
                if cost is not None:
                    out[i, j] = cost.round_trip_s
        return depots, drops, out

    # ---- changes --------------------------------------------------------------------------

    def add_zone(self, zone: NoFlyZone) -> int:
        """Add a no-fly zone (ValueError if its id is taken) and replan the drone entries it can
        change: paths that meet its buffered shape, every entry of a depot it encloses, and
        failures on a leg's wind (another path may have headway). Returns how many were replanned."""
        planner = self._planner
        self._airspace = self._airspace.with_zone(zone)
        if planner is None:
            return 0  # nothing planned yet: the planner, when built, sees the zone
        planner.add_zone(zone)
        if zone.zone_id not in planner.zones_in_effect:
            return 0
        shape = zone.buffered(self._airspace.buffer_m)
        shapely.prepare(shape)
        enclosed = {d for d in self.site.depots if not self._depot_clear(d)}
        stale = []
        for key, flight in self._flights.items():
            line = flight.path_line()
            if key[1] in enclosed:
                stale.append(key)
            elif line is not None:
                if shape.intersects(line):
                    stale.append(key)
            elif isinstance(flight.error, WindLimitExceeded):
                stale.append(key)
        return self._replan(stale)

    def remove_zone(self, zone_id: str) -> int:
        """Remove a no-fly zone by id (UnknownZone if there is none) and replan the drone entries
        it can change: those whose equal-length ellipse meets its buffered shape (only there can a
        shorter path run) and those that had no plan. Returns how many were replanned."""
        if zone_id not in self._airspace:
            raise UnknownZone(zone_id)
        zone = self._airspace.zone(zone_id)
        planner = self._planner
        self._airspace = self._airspace.without_zone(zone_id)
        if planner is None:
            return 0
        mattered = zone_id in planner.zones_in_effect
        planner.remove_zone(zone_id)
        if not mattered:
            return 0
        shape = zone.buffered(self._airspace.buffer_m)
        shapely.prepare(shape)
        stale = []
        for key, flight in self._flights.items():
            if flight.plan is None:
                if isinstance(flight.error, _ZONE_DEPENDENT):
                    stale.append(key)
            elif shape.intersects(_ellipse(flight.start, flight.goal, flight.plan.path.length_m)):
                stale.append(key)
        return self._replan(stale)

    def sidewalks_changed(self) -> None:
        """Forget every robot route (after closing or reopening sidewalk edges)."""
        self._drives.clear()
        self._routed_depots.clear()

    # ---- internals ------------------------------------------------------------------------

    def _price(self, model: VehicleModel, depot: str, job: Job, layer_m: float | None) -> TripCost | None:
        if model.kind not in job.kinds:
            return None
        if job.depot is not None and job.depot != depot:
            return None
        if not (math.isfinite(job.weight_kg) and job.weight_kg >= 0):
            raise ValueError(f"order {job.order_id}: weight_kg must be finite and >= 0, got {job.weight_kg}")
        if job.weight_kg > model.max_payload_kg or self.wind.speed_m_s > model.max_wind_m_s:
            return None
        drop = self._drop(job)
        if drop is None:
            return None
        return self._price_at(model, depot, drop, job.weight_kg, layer_m)

    def _price_at(
        self, model: VehicleModel, depot: str, drop: _Drop, payload_kg: float, layer_m: float | None
    ) -> TripCost | None:
        if model.is_drone:
            if not drop.drone_ok:
                return None
            flight = self._flight(model, depot, drop)
            if flight.plan is None:
                return None
            alt = self.layer_m if layer_m is None else layer_m
            key = (payload_kg, alt)
            if key not in flight.prices:
                if len(flight.prices) >= _MAX_PRICES_PER_ENTRY:
                    flight.prices.clear()
                try:
                    flight.prices[key] = drone_trip_cost(
                        flight.plan.path.points,
                        model,
                        payload_kg=payload_kg,
                        wind=self.wind,
                        cruise_alt_m=alt,
                    )
                except PlanningError:
                    flight.prices[key] = None
            return flight.prices[key]
        if not drop.robot_ok:
            return None
        drive = self._drive(depot, drop)
        if drive.route is None:
            return None
        rkey = (model, payload_kg)  # the route serves every robot model; the price is per model
        if rkey not in drive.prices:
            if len(drive.prices) >= _MAX_PRICES_PER_ENTRY:
                drive.prices.clear()
            try:
                drive.prices[rkey] = robot_trip_cost(drive.route.length_m, model, payload_kg=payload_kg)
            except PlanningError:
                drive.prices[rkey] = None
        return drive.prices[rkey]

    def _named(self, name: str) -> _Drop:
        d = self.site.drop_points[name]
        return _Drop(name, d.xy_m, d.drone_ok, d.robot_ok)

    def _drop(self, job: Job) -> _Drop | None:
        point = self.site.drop_points.get(job.drop)
        if point is not None:
            return _Drop(job.drop, point.xy_m, point.drone_ok, point.robot_ok)
        if job.drop.startswith("xy:"):  # a free coordinate admits both kinds (as intake validates it)
            x, y = job.dropoff_xy_m
            return _Drop(job.drop, (float(x), float(y)), True, True)
        return None

    def _flight(self, model: VehicleModel, depot: str, drop: _Drop) -> _Flight:
        key = (model, depot, drop.key)
        found = self._flights.get(key)
        if found is None:
            found = self._flights[key] = self._plan(model, self.site.depot(depot).xy_m, drop.xy)
        return found

    def _plan(self, model: VehicleModel, start: tuple[float, float], goal: tuple[float, float]) -> _Flight:
        east, north = self.wind.east_north_m_s
        try:
            plan = plan_flight(
                self.flight_planner,
                start,
                goal,
                model,
                self.layer_m,
                wind_east_m_s=east,
                wind_north_m_s=north,
            )
        except PlanningError as exc:
            return _Flight(start, goal, None, exc)
        return _Flight(start, goal, plan)

    def _replan(self, keys: Iterable[tuple[VehicleModel, str, str]]) -> int:
        count = 0
        for key in keys:
            old = self._flights[key]
            self._flights[key] = self._plan(key[0], old.start, old.goal)
            count += 1
        return count

    def _depot_clear(self, depot: str) -> bool:
        """Whether a drone can leave the depot at all (not inside a zone nor a pocket enclosed by zones)."""
        xy = self.site.depot(depot).xy_m
        try:
            self.flight_planner.path(xy, xy)
        except PlanningError:
            return False
        return True

    def _graph(self) -> SidewalkGraph:
        return self.site.sidewalks if self._sidewalks is None else self._sidewalks

    def _drive(self, depot: str, drop: _Drop) -> _Drive:
        key = (depot, drop.key)
        found = self._drives.get(key)
        if found is not None:
            return found
        if drop.key in self.site.drop_points and depot not in self._routed_depots:
            self._route_depot(depot)  # one search serves every drop point of the depot
            found = self._drives.get(key)
            if found is not None:
                return found
        route = self._graph().routes_from(
            self.site.depot(depot).xy_m, [drop.xy], max_walk_m=self.robot_walk_m
        )[0]
        found = self._drives[key] = _Drive(route)
        return found

    def _route_depot(self, depot: str) -> None:
        if depot in self._routed_depots:
            return
        names = [n for n, d in self.site.drop_points.items() if d.robot_ok and (depot, n) not in self._drives]
        routes = self._graph().routes_from(
            self.site.depot(depot).xy_m,
            [self.site.drop_points[n].xy_m for n in names],
            max_walk_m=self.robot_walk_m,
        )
        for name, route in zip(names, routes, strict=True):
            self._drives[(depot, name)] = _Drive(route)
        self._routed_depots.add(depot)


def _ellipse(a: tuple[float, float], b: tuple[float, float], length_m: float) -> shapely.Polygon:
    """A polygon containing every point p with |a p| + |p b| <= length_m (a slight margin added)."""
    c = 0.5 * math.hypot(b[0] - a[0], b[1] - a[1])
    pad = 1e-6 * max(1.0, length_m)
    semi_major = max(0.5 * length_m, c) + pad
    semi_minor = math.sqrt(max(semi_major**2 - c**2, 0.0)) + pad
    # A polygon circumscribing the unit circle, stretched: affine maps keep the containment.
    shape = affinity.scale(_UNIT_CIRCLE, semi_major, semi_minor, origin=(0.0, 0.0))
    shape = affinity.rotate(shape, math.atan2(b[1] - a[1], b[0] - a[0]), origin=(0.0, 0.0), use_radians=True)
    return affinity.translate(shape, 0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1]))


if TYPE_CHECKING:

    def _implements_costs(costs: SiteCosts) -> Costs:
        return costs


__all__ = ["DRONE_RELEASE_HOVER_S", "ROBOT_HANDOFF_WAIT_S", "SiteCosts", "drone_trip_cost", "robot_trip_cost"]
