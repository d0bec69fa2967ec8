"""A sortie as planned: which vehicle flies or drives which order, along which path, and the PX4
mission that says so. Stored as JSON with the sortie, so a restarted service knows what the vehicle
is doing from the mission progress it reports (the seq of the drop point, of the release)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import shapely

from planner.airspace import Airspace
from planner.geo import FloatArray
from planner.site import Site
from vehicles import px4
from vehicles.base import (
    Delay,
    ExclusionCircle,
    ExclusionPolygon,
    GeofenceItem,
    InclusionPolygon,
    Land,
    MissionItem,
    PayloadRelease,
    TakeOff,
    Waypoint,
)

Kind = Literal["drone", "robot"]
Route = Literal["full", "resume", "home"]
#: How long a drone holds at the release height over the drop point. The service commands the
#: release (DO_GRIPPER) in this hold, so PX4's answer confirms it and a jammed gripper is known; the
#: mission's own release item after it is the fallback when no ground station is listening.
RELEASE_HOLD_S = 10.0
#: A drone descends to this height above the drop point to release the parcel.
RELEASE_ALT_M = 10.0
#: Acceptance radius of the first waypoint of a mission replanned in flight (the drone's position
#: when it was planned): it flew on while the plan was made and uploaded, and must not turn back for it.
RESUME_ACCEPT_M = 15.0
#: Fence items PX4 stores: dataman's DM_KEY_FENCE_POINTS_MAX is 64 (src/modules/dataman/dataman.h),
#: and MAVLink's mission manager refuses a larger MISSION_COUNT with NO_SPACE. Keep a margin.
MAX_FENCE_ITEMS = 60
#: Zones further than this from a sortie's path are left out of its fence (they cannot matter to it).
FENCE_MARGIN_M = 300.0
#: A simplified fence shape keeps at least this far from a sortie's path (m; the planner keeps
#: `Site.buffer_m`, 10 m, from every zone).
PATH_CLEARANCE_M = 3.0


@dataclass(frozen=True)
class SortiePlan:
    sortie_id: str
    order_id: str
    vehicle_id: str
    kind: Kind
    depot: str
    out_wgs84: tuple[tuple[float, float], ...]  # depot ... drop point, (lat_deg, lon_deg)
    back_wgs84: tuple[tuple[float, float], ...]  # drop point ... depot
    cruise_alt_m: float  # drones; 0 for robots
    speed_m_s: float
    outbound_s: float  # planned time from start to the drop point
    round_trip_s: float
    energy_wh: float
    # filled in by `mission`: seqs of PX4's raw items
    mission_total: int = 0
    drop_seq: int = 0  # the waypoint over / at the drop point
    handoff_seq: int = 0  # the item whose completion means the parcel left the vehicle
    hold_seq: int = 0  # drones: the hold over the drop point in which the service commands the release
    # how the parcel leaves the vehicle (fleetctl.orders.model.Handoff): "pin" makes a robot wait
    handoff: str = "locker"
    battery_wh: float = 0.0  # the vehicle's battery and the reserve it must land with (0: unknown)
    reserve_percent: float = 0.0
    # "full": take off at out_wgs84[0]. Replanned in flight (fleetctl.sorties.replan), drones only:
    # "resume" flies on from out_wgs84[0] (where it was) to the drop and home; "home" flies back_wgs84
    # only (the parcel is gone, or comes back), and has no drop: drop/hold/handoff seqs are -1.
    route: Route = "full"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SortiePlan:
        return cls.from_json_dict(json.loads(text))

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> SortiePlan:
        """From `dataclasses.asdict(plan)` as a JSON column gives it back (lists for tuples)."""
        fields = dict(data)
        fields["out_wgs84"] = tuple((float(p[0]), float(p[1])) for p in fields["out_wgs84"])
        fields["back_wgs84"] = tuple((float(p[0]), float(p[1])) for p in fields["back_wgs84"])
        return cls(**fields)


def mission(plan: SortiePlan) -> tuple[list[MissionItem], SortiePlan]:
    """The PX4 mission for a plan, and the plan with the seqs PX4 will report for it.

    Drone: take off, cruise the path at the layer, descend over the drop point to the release
    height, release, climb back to the layer, fly home, land on the pad. Robot: drive the route,
    stop at the drop point for the hand-off, drive back (PX4's rover never completes NAV_LAND,
    so it ends with a waypoint on the pad and holds, still armed). A plan replanned in flight
    (`route` "resume" or "home") starts with a waypoint where the drone was instead of a take-off."""
    items: list[MissionItem] = []
    if plan.kind == "drone":
        alt = plan.cruise_alt_m
        drop_index = hold_index = handoff_index = -1
        if plan.route == "home":
            items += _cruise(plan.back_wgs84[:-1], alt, plan.speed_m_s)
        else:
            drop = plan.out_wgs84[-1]
            if plan.route == "full":
                items.append(TakeOff(alt))
                items += _cruise(plan.out_wgs84[1:], alt, plan.speed_m_s)
            else:
                items += _cruise(plan.out_wgs84, alt, plan.speed_m_s, first_accept_m=RESUME_ACCEPT_M)
            items.append(Waypoint(*drop, RELEASE_ALT_M))
            drop_index = len(items) - 1
            items.append(Delay(RELEASE_HOLD_S))
            hold_index = len(items) - 1
            items.append(PayloadRelease())
            handoff_index = len(items) - 1
            items.append(Waypoint(*drop, alt))
            items += [Waypoint(lat, lon, alt) for lat, lon in plan.back_wgs84[1:-1]]
        items.append(Waypoint(*plan.back_wgs84[-1], alt))
        items.append(Land(*plan.back_wgs84[-1]))
    else:
        if plan.route != "full":
            raise ValueError(f"a robot's plan cannot be {plan.route!r}: only drones are replanned in flight")
        items += [Waypoint(lat, lon, 0.0, speed_m_s=plan.speed_m_s if i == 0 else None)
                  for i, (lat, lon) in enumerate(plan.out_wgs84[1:])]
        drop_index = handoff_index = hold_index = len(items) - 1
        items += [Waypoint(lat, lon, 0.0) for lat, lon in plan.back_wgs84[1:]]
    raw = px4.mission_items(items, "drone" if plan.kind == "drone" else "rover", takeoff_at=plan.out_wgs84[0])
    seqs = px4.mission_seq_of_item(items, raw)

    def seq(index: int) -> int:
        return seqs[index] if index >= 0 else -1

    placed = SortiePlan(**{**asdict(plan), "mission_total": len(raw), "drop_seq": seq(drop_index),
                           "handoff_seq": seq(handoff_index), "hold_seq": seq(hold_index)})
    placed = SortiePlan.from_json(placed.to_json())  # tuples, as a reloaded plan has them
    return items, placed


def _cruise(points: Sequence[tuple[float, float]], alt_m: float, speed_m_s: float, *,
            first_accept_m: float | None = None) -> list[MissionItem]:
    """Waypoints at the cruise layer; the first one sets the speed (PX4: DO_CHANGE_SPEED before it)."""
    return [Waypoint(lat, lon, alt_m, speed_m_s=speed_m_s if i == 0 else None,
                     acceptance_m=first_accept_m if i == 0 else None)
            for i, (lat, lon) in enumerate(points)]


def geofence(site: Site, airspace: Airspace, at_s: float | None, *, near_xy_m: FloatArray | None = None,
             margin_m: float = FENCE_MARGIN_M, max_items: int = MAX_FENCE_ITEMS) -> list[GeofenceItem]:
    """The operating area as inclusion and the zones in force as exclusion, so PX4 itself refuses
    to breach them (zones unbuffered: the legal boundary; the planner keeps its buffer). With
    `near_xy_m` (a sortie's path), only zones within `margin_m` of it.

    PX4 stores a bounded number of fence vertices (dataman), and OSM outlines are detailed, so the
    fence is fitted into `max_items`: the area is simplified inwards and each exclusion polygon is
    simplified and grown by the same tolerance, so the fence only ever gets stricter. But a fence
    stricter than the path would make PX4 refuse the mission ("Geofence violation for waypoint n"),
    so no simplified shape may reach within `PATH_CLEARANCE_M` of the path: a zone near the path
    keeps a smaller tolerance, down to its exact outline; and if the fence still does not fit, the
    zones farthest from the path are left out (the planner keeps clear of every zone anyway; PX4's
    fence is the backstop where the path runs)."""
    fence = airspace.fence(at_s)
    corridor = None if near_xy_m is None else _corridor(near_xy_m, margin_m)
    path = None if near_xy_m is None else _corridor(near_xy_m, PATH_CLEARANCE_M)
    rings = [r for r in fence.exclusion_polygons if corridor is None or corridor.intersects(shapely.Polygon(r))]
    circles = [ExclusionCircle(*site.frame.to_wgs84(x, y), float(r)) for x, y, r in fence.exclusion_circles
               if corridor is None or corridor.intersects(shapely.Point(x, y).buffer(r))]
    if path is not None:  # nearest first: if something must be left out, it is the farthest
        rings.sort(key=lambda r: shapely.Polygon(r).distance(path))
    tolerance_m = 0.0
    while True:
        inclusion = _simplified_inclusion(fence.inclusion, tolerance_m)
        if path is not None and tolerance_m > 0 and not shapely.Polygon(inclusion).contains(path):
            inclusion = _simplified_inclusion(fence.inclusion, 0.0)
        polygons = [_fitted(ring, tolerance_m, path) for ring in rings]
        used = len(inclusion) + sum(len(p) for p in polygons) + len(circles)
        if used <= max_items or tolerance_m > 200.0:
            break
        tolerance_m = max(1.0, tolerance_m * 2)
    while polygons and used > max_items:
        used -= len(polygons.pop())
    items: list[GeofenceItem] = [InclusionPolygon(_wgs(site, inclusion))]
    items += [ExclusionPolygon(_wgs(site, ring)) for ring in polygons]
    items += circles
    return items


def _fitted(ring: FloatArray, tolerance_m: float, path: shapely.Geometry | None) -> FloatArray:
    """The ring simplified at the largest tolerance up to `tolerance_m` that keeps clear of `path`."""
    while tolerance_m >= 1.0:
        simplified = _simplified(ring, tolerance_m)
        if path is None or not shapely.Polygon(simplified).intersects(path):
            return simplified
        tolerance_m /= 2
    return np.asarray(ring, dtype=np.float64)


def _corridor(points_xy_m: FloatArray, margin_m: float) -> shapely.Geometry:
    pts = np.asarray(points_xy_m, dtype=np.float64)
    line = shapely.LineString(pts) if len(pts) > 1 else shapely.Point(pts[0])
    return line.buffer(margin_m)


def _simplified(ring: FloatArray, tolerance_m: float) -> FloatArray:
    if tolerance_m <= 0:
        return np.asarray(ring, dtype=np.float64)
    grown = shapely.Polygon(ring).simplify(tolerance_m).buffer(tolerance_m, join_style="mitre")
    hull = grown if isinstance(grown, shapely.Polygon) else grown.convex_hull
    return np.asarray(hull.exterior.coords, dtype=np.float64)[:-1]


def _simplified_inclusion(ring: FloatArray, tolerance_m: float) -> FloatArray:
    # The area may only shrink: a simplified inclusion fence must stay inside the real one.
    if tolerance_m <= 0:
        return np.asarray(ring, dtype=np.float64)
    shrunk = shapely.Polygon(ring).buffer(-tolerance_m).simplify(tolerance_m / 2)
    if isinstance(shrunk, shapely.MultiPolygon):
        shrunk = max(shrunk.geoms, key=lambda g: g.area)
    if shrunk.is_empty:
        return np.asarray(ring, dtype=np.float64)
    return np.asarray(shrunk.exterior.coords, dtype=np.float64)[:-1]


def _wgs(site: Site, ring: FloatArray) -> tuple[tuple[float, float], ...]:
    pts = site.frame.points_to_wgs84(np.asarray(ring, dtype=np.float64))
    return tuple((float(a), float(b)) for a, b in pts)


def fence_for(site: Site, airspace: Airspace, plan: SortiePlan, at_s: float | None = None) -> list[GeofenceItem]:
    """The geofence to upload with a sortie: for a drone the area and the zones near its path; for a
    robot the area alone (no-fly zones are airspace: a sidewalk under one is open to robots, and
    PX4 would refuse a rover mission whose route crosses an exclusion)."""
    if plan.kind == "robot":
        return geofence(site, Airspace(airspace.area, (), airspace.buffer_m), at_s)
    # A fresh plan flies back the way it went; a replanned one has its own way back (or only that).
    flown = plan.out_wgs84 if plan.route == "full" else (*plan.out_wgs84, *plan.back_wgs84)
    path = site.frame.points_to_local(np.asarray(flown, dtype=np.float64))
    return geofence(site, airspace, at_s, near_xy_m=path)
