"""A drone sortie replanned in flight around a no-fly zone that appeared while it flew (issue 10: an
operator adds a zone, e.g. for an emergency helicopter). Pure and synchronous (it runs the
planner), so the service calls it in a worker thread.

`affected` tells whether the part of a sortie still ahead comes within the planning buffer of a
zone; `reroute` plans the rest of the sortie from where the drone is: a `SortiePlan` with route
"resume" (to the drop point, the release, home) or "home" (only the way home), and its mission, which
`plan.mission` rebuilds from the plan alone (a restarted service follows it like a fresh one).

Uploading it to a drone that flies (what real PX4 does; PX4-Autopilot main 02e73e3b6f, read in
src/modules/mavlink/mavlink_mission.cpp, navigator/mission_base.cpp, commander/failsafe/):

- A completed mission upload publishes the new mission at once with `current_seq` = the item the
  upload marked current (`vehicles.px4.mission_items` marks item 0; with none marked, PX4 keeps the
  old index). In AUTO.MISSION the navigator's `onMissionUpdate` resets its setpoints and flies item
  0 of the new mission straight away: no MISSION_START, no mode change, no landing. MISSION_CURRENT
  shows the new `total` and seq 0 right after the ACK.
- The feasibility check runs when the upload lands (or, while a new fence is still loading, as soon
  as it has loaded); until then the previous verdict stands. A mission that fails it while flying
  in AUTO.MISSION stops the sortie: "Geofence violation for waypoint n", "No valid mission
  available, loitering", MISSION_CURRENT NO_MISSION and mode Hold (AUTO.LOITER) within 0.1 s
  (seen on PX4 SITL SIH with a fence upload; tests/sitl/test_inflight_upload.py).
- The check is re-run against every new fence, over every position item of the mission (flown or
  not). So the new fence must not go up while the old mission is flown (the new zone may contain
  its waypoints), and the new mission must not be checked against the old fence (its shapes were
  simplified and grown around the old path only and may cover the new one).

So the runner sends, in this order (each an upload PX4 ACKs; `vehicles` API):

    1. vehicle.clear_geofence()                # the old mission stays valid (no fence to breach)
    2. vehicle.upload_mission(reroute.items)   # PX4 flies item 0 of it at once, still AUTO.MISSION
    3. wait until MISSION_CURRENT shows total == reroute.plan.mission_total (its seqs are the new
       plan's from then on) and seq >= reroute.fence_from_seq (0 unless it first flies out of a zone:
       PX4 would hold at once inside a zone of its fence, GF_ACTION)
    4. vehicle.upload_geofence(fence_for(site, airspace, reroute.plan))

If the vehicle is not in AUTO.MISSION (paused in Hold, or a geofence failsafe held it), add
5. vehicle.start_mission(): MISSION_START switches to AUTO.MISSION at item 0 (the upload reset the
resume index). Do not send it while it flies the mission: it is not needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import shapely
from shapely.ops import nearest_points

from fleetctl.sorties.plan import SortiePlan, mission
from fleetctl.trip import DRONE_RELEASE_HOVER_S, first_model
from planner.airspace import Airspace, NoFlyZone
from planner.energy import EnergyEstimate, drone_leg_energy, drone_path_energy, soc_to_wh
from planner.errors import DropoffInsideZone, EnergyInfeasible, InsideNoFlyZone, NoRoute
from planner.flight import FlightPlanner
from planner.geo import FloatArray
from planner.site import Site
from planner.vehicle_model import VehicleModel
from planner.wind import Wind
from vehicles import px4
from vehicles.base import Land, MissionItem, TakeOff, Waypoint

#: A zone this much nearer than the buffer counts (paths planned along a buffered outline sit at
#: the buffer itself, give or take the WGS84 round trip of the stored plan).
CLEARANCE_TOLERANCE_M = 0.05
#: How far beyond the buffered outline of a zone a drone caught inside it is sent to.
ESCAPE_MARGIN_M = 2.0


@dataclass(frozen=True)
class Reroute:
    """The rest of a sortie, planned around the zones from where the drone is."""

    plan: SortiePlan  # route "resume" or "home"; seqs, times and energy of the remaining part
    items: list[MissionItem]  # mission(plan)[0]: what to upload
    replanned_m: float  # horizontal length of the remaining route
    reason: str
    #: Upload the new fence only once MISSION_CURRENT's seq reached this (0: at once). Non-zero when
    #: the drone is inside a zone: the mission first flies it out by the shortest way.
    fence_from_seq: int = 0


def affected(site: Site, airspace: Airspace, plan: SortiePlan, current_seq: int,
             position_lat_lon: tuple[float, float] | None, *, at_s: float | None = None) -> bool:
    """Whether the part of the sortie still ahead (from `position_lat_lon`, then the mission items
    from `current_seq` on) comes within the site's buffer of a zone of `airspace` in force at `at_s`
    (None: every zone, whatever its window) at the altitudes it flies there. Robots: never (zones
    are airspace)."""
    if plan.kind != "drone":
        return False
    return bool(_conflicts(site, airspace, _remaining(site, plan, current_seq, position_lat_lon), at_s))


def reroute(site: Site, flight: FlightPlanner, airspace: Airspace, plan: SortiePlan, *,
            position: tuple[float, float, float], current_seq: int, delivered: bool,
            at_s: float | None = None, model: VehicleModel | None = None, payload_kg: float = 0.0,
            wind: Wind | None = None, battery_percent: float | None = None) -> Reroute:
    """The rest of a drone sortie from `position` (lat_deg, lon_deg, rel_alt_m), around every zone
    of `flight` (the planner with the new zone added, as dispatch keeps it): not yet `delivered`,
    on to the drop point, the same release as `mission`, then home; `delivered`, only home (also
    the way to bring a parcel back). A drone inside a zone's buffer first flies out of it by the
    shortest way.

    `model` prices the energy (None: the site's first drone model); `payload_kg` is what it
    carries now. With `battery_percent`, EnergyInfeasible when the rest needs more than the
    battery holds above the model's reserve. Raises DropoffInsideZone (the drop point is inside a
    zone: fail the order, call again with delivered=True), InsideNoFlyZone (the depot pad is),
    NoRoute / OutsideOperatingArea (no way), all PlanningError."""
    if plan.kind != "drone":
        raise ValueError(f"sortie {plan.sortie_id} is a robot's: zones are airspace, robots are never replanned")
    model = model if model is not None else first_model(site, "drone")
    if model is None:
        raise ValueError(f"site {site.name!r} has no drone model to price the route with")
    wind = wind or Wind(0.0, 0.0)
    lat, lon, rel_alt_m = position
    here = _local(site, lat, lon)
    home = _local(site, *plan.back_wgs84[-1])
    start, escaped = _way_out(flight, here)
    if delivered:
        back = _path(flight, start, home, "home")
        out = back[:1]
        route_pts = np.vstack([[here], back])
        energy = _energy(model, route_pts, payload_kg, wind, climb_m=max(0.0, plan.cruise_alt_m - rel_alt_m),
                         descent_m=plan.cruise_alt_m)
        outbound = EnergyEstimate.zero()
        new = replace(plan, route="home")
    else:
        drop = _local(site, *plan.out_wgs84[-1])
        out = _path(flight, start, drop, "drop")
        back = _path(flight, drop, home, "home")
        outbound = _energy(model, np.vstack([[here], out]), payload_kg, wind,
                           climb_m=max(0.0, plan.cruise_alt_m - rel_alt_m), descent_m=plan.cruise_alt_m)
        outbound = outbound + drone_leg_energy(model, distance_m=0.0, payload_kg=payload_kg,
                                               hover_s=DRONE_RELEASE_HOVER_S)
        energy = outbound + _energy(model, back, 0.0, wind, climb_m=plan.cruise_alt_m, descent_m=plan.cruise_alt_m)
        route_pts = np.vstack([[here], out, back])
        new = replace(plan, route="resume")
    if battery_percent is not None:
        available_wh = soc_to_wh(model, max(0.0, min(100.0, battery_percent)))
        reserve_wh = model.battery_wh * model.reserve_fraction
        if energy.energy_wh > available_wh - reserve_wh:
            raise EnergyInfeasible(energy.energy_wh, available_wh, reserve_wh)
    new = replace(new, out_wgs84=_wgs(site, out), back_wgs84=_wgs(site, back), outbound_s=outbound.duration_s,
                  round_trip_s=energy.duration_s, energy_wh=energy.energy_wh, mission_total=0, drop_seq=0,
                  handoff_seq=0, hold_seq=0)
    items, placed = mission(new)
    # The planner's word is checked against the airspace the runner fences with: a zone missing from
    # `flight` would otherwise go unnoticed until PX4's fence held the drone.
    missed = _conflicts(site, airspace, _remaining(site, placed, 0, None), at_s)
    if missed:
        raise NoRoute(f"the planned route still passes within the buffer of zone(s) {', '.join(missed)}: "
                      "is the new zone in the flight planner's airspace?")
    steps = np.diff(route_pts, axis=0)
    reason = _reason(site, airspace, plan, current_seq, (lat, lon), at_s, escaped)
    fence_from_seq = _first_waypoint_seq(items, placed) + 1 if escaped is not None else 0
    return Reroute(placed, items, float(np.hypot(steps[:, 0], steps[:, 1]).sum()), reason, fence_from_seq)


# ---- the route still ahead, as segments with the altitude band they are flown in ----

@dataclass(frozen=True)
class _Leg:
    a: tuple[float, float]
    b: tuple[float, float]
    low_m: float
    high_m: float


def _remaining(site: Site, plan: SortiePlan, current_seq: int,
               position_lat_lon: tuple[float, float] | None) -> list[_Leg]:
    """The legs from the vehicle (or the current item) through every position item from
    `current_seq` on; each leg flown between its ends' altitudes (a vertical one over a spot)."""
    items, _ = mission(plan)
    raw = px4.mission_items(items, "drone", takeoff_at=plan.out_wgs84[0])
    seqs = px4.mission_seq_of_item(items, raw)
    points: list[tuple[tuple[float, float], float]] = []
    if position_lat_lon is not None:
        points.append((_local(site, *position_lat_lon), plan.cruise_alt_m))
    for item, seq in zip(items, seqs, strict=True):
        if seq < current_seq:
            continue
        if isinstance(item, TakeOff):
            xy = _local(site, *plan.out_wgs84[0])
            points += [(xy, 0.0), (xy, item.alt_m)]
        elif isinstance(item, Waypoint):
            points.append((_local(site, item.lat, item.lon), item.alt_m))
        elif isinstance(item, Land):
            points.append((_local(site, item.lat, item.lon), 0.0))
    if len(points) == 1:
        points.append(points[0])
    return [_Leg(a, b, min(alt_a, alt_b), max(alt_a, alt_b))
            for (a, alt_a), (b, alt_b) in itertools.pairwise(points)]


def _conflicts(site: Site, airspace: Airspace, legs: Sequence[_Leg], at_s: float | None) -> list[str]:
    """Ids of the zones in force at `at_s` that some leg comes within the buffer of, in its band."""
    if not legs:
        return []
    limit_m = site.buffer_m - CLEARANCE_TOLERANCE_M
    lines = [shapely.LineString([leg.a, leg.b]) if leg.a != leg.b else shapely.Point(leg.a) for leg in legs]
    hits = []
    for zone in airspace.active_zones(at_s):
        shape = _exact(zone)
        for leg, line in zip(legs, lines, strict=True):
            if zone.in_band(leg.low_m, leg.high_m) and _distance_m(zone, shape, line) < limit_m:
                hits.append(zone.zone_id)
                break
    return hits


def _exact(zone: NoFlyZone) -> shapely.Geometry:
    if zone.circle is not None:
        return shapely.Point(zone.circle[0], zone.circle[1])
    return zone.shape


def _distance_m(zone: NoFlyZone, shape: shapely.Geometry, line: shapely.Geometry) -> float:
    # A circle's `shape` is its circumscribed polygon; its true outline is nearer.
    if zone.circle is not None:
        return max(0.0, float(shape.distance(line)) - zone.circle[2])
    return float(shape.distance(line))


def _reason(site: Site, airspace: Airspace, plan: SortiePlan, current_seq: int, here: tuple[float, float],
            at_s: float | None, escaped: str | None) -> str:
    ids = _conflicts(site, airspace, _remaining(site, plan, current_seq, here), at_s)
    text = f"around no-fly zone(s) {', '.join(ids)}" if ids else "replanned"
    return f"out of zone {escaped}, then {text}" if escaped is not None else text


# ---- planning ----

def _way_out(flight: FlightPlanner, here: tuple[float, float]) -> tuple[tuple[float, float], str | None]:
    """Where the route starts: here, or (inside a buffered zone) the nearest point just outside
    every buffered zone, and the id of the zone it was in."""
    airspace = flight.airspace
    shapes = {z: airspace.zone(z).buffered(airspace.buffer_m) for z in flight.zones_in_effect}
    point = shapely.Point(here)
    inside = next((z for z, shape in shapes.items() if shape.contains_properly(point)), None)
    if inside is None:
        return here, None
    blocked = shapely.union_all(list(shapes.values()))
    edge = blocked.exterior if isinstance(blocked, shapely.Polygon) else blocked.boundary
    nearest = nearest_points(edge, point)[0]
    dx, dy = nearest.x - here[0], nearest.y - here[1]
    norm = math.hypot(dx, dy) or 1.0
    exit_xy = (nearest.x + dx / norm * ESCAPE_MARGIN_M, nearest.y + dy / norm * ESCAPE_MARGIN_M)
    exit_point = shapely.Point(exit_xy)
    other = next((z for z, shape in shapes.items() if shape.contains_properly(exit_point)), None)
    if other is not None:
        raise NoRoute(f"no way out of zone {inside}: its nearest edge leads into zone {other}")
    return exit_xy, inside


def _path(flight: FlightPlanner, start: tuple[float, float], goal: tuple[float, float], to: str) -> FloatArray:
    try:
        return flight.path(start, goal).points
    except InsideNoFlyZone as e:
        if e.what == "goal" and to == "drop":
            raise DropoffInsideZone(e.zone_id, e.reason) from e
        if e.what == "goal":
            raise InsideNoFlyZone("the depot pad", e.zone_id, e.reason) from e
        raise


def _energy(model: VehicleModel, points: FloatArray, payload_kg: float, wind: Wind, *, climb_m: float,
            descent_m: float) -> EnergyEstimate:
    """fleetctl.trip's formula: climb, cruise the polyline with the wind per segment, descend."""
    return drone_path_energy(model, points, payload_kg=payload_kg, climb_m=climb_m, descent_m=descent_m,
                             wind_speed_m_s=wind.speed_m_s, wind_from_deg=wind.from_deg)


def _first_waypoint_seq(items: Sequence[MissionItem], plan: SortiePlan) -> int:
    raw = px4.mission_items(items, "drone", takeoff_at=plan.out_wgs84[0])
    return px4.mission_seq_of_item(items, raw)[0]


def _local(site: Site, lat: float, lon: float) -> tuple[float, float]:
    x, y = site.frame.to_local(lat, lon)
    return float(x), float(y)


def _wgs(site: Site, points_xy_m: FloatArray) -> tuple[tuple[float, float], ...]:
    pts = site.frame.points_to_wgs84(np.asarray(points_xy_m, dtype=np.float64))
    return tuple((float(a), float(b)) for a, b in pts)


__all__ = ["Reroute", "affected", "reroute"]
