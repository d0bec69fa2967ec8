"""Drone paths around no-fly zones, and the altitude profile and timing of a flight.

`FlightPlanner` keeps a reduced visibility graph (`planner._visibility`) over the buffered zones in
force at one time and altitude ceiling; `path()` runs one shortest-path search per query and
`add_zone` / `remove_zone` update the graph incrementally. `plan_flight` turns a path into 3D
waypoints: climb over the start to the cruise layer, cruise along the path, descend over the goal.

Which zones matter: those active at the planner's `at_s` whose altitude band meets
[0, max_alt_m]. Climb and descent happen over the endpoints, so a flight at cruise altitude
h <= max_alt_m sweeps exactly the band [0, h] and can ignore everything above max_alt_m.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from planner._obstacles import ObstacleSet
from planner.airspace import Airspace, NoFlyZone
from planner.energy import ground_speed_m_s
from planner.errors import (
    InsideNoFlyZone,
    NoRoute,
    OutsideOperatingArea,
    UnknownZone,
    WindLimitExceeded,
)
from planner.vehicle_model import VehicleModel
from planner.wind import Wind, track_deg

FloatArray = npt.NDArray[np.float64]
LegKind = Literal["climb", "cruise", "descent"]


@dataclass(frozen=True)
class FlightPath:
    """A horizontal path: `points` (N, 2) local metres from start to goal, and its length."""

    points: FloatArray
    length_m: float


class FlightPlanner:
    """Shortest drone paths inside the operating area and outside every zone that matters.

    `at_s` is the time (epoch s) whose zones apply (None: every zone, whatever its window); with
    `until_s` too, every zone in force at any moment of [at_s, until_s] applies (plan for a whole
    sortie, not an instant); `max_alt_m` the highest cruise altitude it will plan for (None: unlimited, so every zone's
    band matters). Queries only read the graph; updates must not run concurrently with them.
    """

    def __init__(
        self,
        airspace: Airspace,
        *,
        at_s: float | None = None,
        until_s: float | None = None,
        max_alt_m: float | None = None,
    ) -> None:
        self._airspace = airspace
        self.at_s = at_s
        self.until_s = until_s
        if at_s is not None and until_s is not None and until_s < at_s:
            raise ValueError(f"until_s {until_s} is before at_s {at_s}")
        self.max_alt_m = math.inf if max_alt_m is None else float(max_alt_m)
        if not self.max_alt_m > 0:
            raise ValueError(f"max_alt_m must be > 0, got {max_alt_m}")
        free = airspace.flyable_area()
        if free.is_empty:
            raise ValueError(f"a {airspace.buffer_m} m buffer leaves no flyable part of the operating area")
        shapes = {z.zone_id: z.buffered(airspace.buffer_m) for z in airspace.zones if self._matters(z)}
        self._obstacles = ObstacleSet(free, shapes)
        self._graph = self._obstacles.graph
        self._in_effect = [z.zone_id for z in airspace.zones if z.zone_id in shapes]

    @property
    def airspace(self) -> Airspace:
        """The airspace with every zone added or removed so far."""
        return self._airspace

    @property
    def zones_in_effect(self) -> tuple[str, ...]:
        """Ids of the zones the paths avoid (active then, band below `max_alt_m`)."""
        return tuple(self._in_effect)

    @property
    def graph_size(self) -> tuple[int, int]:
        """(nodes, edges) of the visibility graph."""
        return self._graph.node_count, self._graph.edge_count

    def _matters(self, zone: NoFlyZone) -> bool:
        if self.until_s is None:
            active = zone.is_active(self.at_s)
        else:
            active = zone.is_active_during(self.at_s, self.until_s)
        return active and zone.in_band(0.0, self.max_alt_m)

    def add_zone(self, zone: NoFlyZone) -> None:
        """Add a zone (ValueError if its id is taken); the graph changes only where the zone is."""
        self._airspace = self._airspace.with_zone(zone)
        if self._matters(zone):
            self._obstacles.add(zone.zone_id, zone.buffered(self._airspace.buffer_m))
            self._in_effect.append(zone.zone_id)

    def remove_zone(self, zone_id: str) -> None:
        """Remove a zone by id; UnknownZone if there is none."""
        if zone_id not in self._airspace:
            raise UnknownZone(zone_id)
        self._airspace = self._airspace.without_zone(zone_id)
        if zone_id in self._obstacles:
            self._obstacles.remove(zone_id)
            self._in_effect.remove(zone_id)

    def _check_endpoint(self, what: str, xy: tuple[float, float]) -> None:
        if not self._graph.in_area(xy):
            raise OutsideOperatingArea(what, xy[0], xy[1])
        for zone_id in self._obstacles.zones_at(xy):
            zone = self._airspace.zone(zone_id)
            raise InsideNoFlyZone(what, zone.zone_id, zone.reason)

    def path(self, start_xy: tuple[float, float], goal_xy: tuple[float, float]) -> FlightPath:
        """The shortest path; OutsideOperatingArea, InsideNoFlyZone or NoRoute when there is none."""
        start = (float(start_xy[0]), float(start_xy[1]))
        goal = (float(goal_xy[0]), float(goal_xy[1]))
        self._check_endpoint("start", start)
        self._check_endpoint("goal", goal)
        # A point clear of every zone but inside a merged obstacle sits in a pocket enclosed by zones.
        enclosed = self._graph.obstacle_keys_at(start) or self._graph.obstacle_keys_at(goal)
        points = None if enclosed else self._graph.shortest_path(start, goal)
        if points is None:
            raise NoRoute(
                f"no flyable path from ({start[0]:.1f}, {start[1]:.1f}) to ({goal[0]:.1f}, {goal[1]:.1f}) m"
            )
        steps = np.diff(points, axis=0)
        return FlightPath(points, float(np.hypot(steps[:, 0], steps[:, 1]).sum()))


@dataclass(frozen=True)
class FlightLeg:
    kind: LegKind
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    distance_m: float
    duration_s: float
    #: Horizontal speed over ground (0 for climb and descent, flown over one spot).
    ground_speed_m_s: float


@dataclass(frozen=True)
class FlightPlan:
    """Waypoints (N, 3) as (x_m, y_m, alt_m AGL), legs between them, totals."""

    path: FlightPath
    cruise_alt_m: float
    waypoints: FloatArray
    legs: tuple[FlightLeg, ...]
    horizontal_m: float
    distance_m: float
    duration_s: float


def plan_flight(
    planner: FlightPlanner,
    start_xy: tuple[float, float],
    goal_xy: tuple[float, float],
    model: VehicleModel,
    cruise_alt_m: float,
    *,
    wind_east_m_s: float = 0.0,
    wind_north_m_s: float = 0.0,
) -> FlightPlan:
    """Climb at the start, cruise the shortest path at `cruise_alt_m`, descend at the goal.

    Wind (air-mass velocity) changes each cruise leg's ground speed; WindLimitExceeded when it is
    above the model's limit or leaves a leg without headway. Climb and descent are timed from the
    model's vertical speeds.
    """
    if not model.is_drone:
        raise ValueError(f"plan_flight needs a drone model, {model.name!r} is a {model.kind}")
    if not cruise_alt_m > 0:
        raise ValueError(f"cruise_alt_m must be > 0, got {cruise_alt_m}")
    if cruise_alt_m > planner.max_alt_m:
        raise ValueError(
            f"cruise at {cruise_alt_m} m is above the {planner.max_alt_m} m the planner considered zones for"
        )
    wind = Wind.from_east_north(float(wind_east_m_s), float(wind_north_m_s))
    wind_m_s = wind.speed_m_s
    if wind_m_s > model.max_wind_m_s:
        raise WindLimitExceeded(wind_m_s, model.max_wind_m_s, f"above the limit of {model.name!r}")

    path = planner.path(start_xy, goal_xy)
    # Repeated points (start == goal, a start on a graph vertex) would make zero-length legs.
    moved = np.r_[True, np.any(np.diff(path.points, axis=0) != 0, axis=1)]
    pts = path.points[moved]
    alt = float(cruise_alt_m)
    waypoints = np.vstack(
        [
            [pts[0, 0], pts[0, 1], 0.0],
            np.column_stack([pts, np.full(len(pts), alt)]),
            [pts[-1, 0], pts[-1, 1], 0.0],
        ]
    )
    legs: list[FlightLeg] = []
    start3 = (float(pts[0, 0]), float(pts[0, 1]), 0.0)
    top3 = (start3[0], start3[1], alt)
    legs.append(FlightLeg("climb", start3, top3, alt, alt / model.climb_speed_m_s, 0.0))
    for index, (a, b) in enumerate(itertools.pairwise(pts)):
        length_m = float(math.hypot(b[0] - a[0], b[1] - a[1]))
        head_m_s, cross_m_s = wind.head_cross_m_s(track_deg(b[0] - a[0], b[1] - a[1]))
        try:
            speed = ground_speed_m_s(model, head_m_s, cross_m_s)
        except WindLimitExceeded as exc:
            raise WindLimitExceeded(exc.wind_m_s, exc.limit_m_s, f"cruise leg {index}: {exc.why}") from exc
        legs.append(
            FlightLeg(
                "cruise",
                (float(a[0]), float(a[1]), alt),
                (float(b[0]), float(b[1]), alt),
                length_m,
                length_m / speed,
                speed,
            )
        )
    end3 = (float(pts[-1, 0]), float(pts[-1, 1]), 0.0)
    legs.append(FlightLeg("descent", (end3[0], end3[1], alt), end3, alt, alt / model.descent_speed_m_s, 0.0))
    return FlightPlan(
        path=path,
        cruise_alt_m=alt,
        waypoints=waypoints,
        legs=tuple(legs),
        horizontal_m=path.length_m,
        distance_m=path.length_m + 2 * alt,
        duration_s=float(sum(leg.duration_s for leg in legs)),
    )


__all__ = [
    "FlightLeg",
    "FlightPath",
    "FlightPlan",
    "FlightPlanner",
    "plan_flight",
]
