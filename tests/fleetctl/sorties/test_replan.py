"""A drone sortie replanned in flight around a new no-fly zone (issue 10), on the bundled Helsinki
site: which sorties are affected, and the rerouted mission keeps clear of every zone, continues
from where the drone is and reports seqs that match it."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import helsinki, near_drop_point

from fleetctl.sorties import SortiePlan, VehicleSlot, fence_for, mission, plan_sortie
from fleetctl.sorties.plan import RELEASE_ALT_M, RELEASE_HOLD_S
from fleetctl.sorties.replan import Reroute, affected, reroute
from planner.airspace import Airspace, NoFlyZone
from planner.errors import DropoffInsideZone, PlanningError
from planner.flight import FlightPlanner
from planner.site import Site
from vehicles import px4
from vehicles.base import Delay, ExclusionCircle, ExclusionPolygon, Land, PayloadRelease, TakeOff, Waypoint

DEPOT = "erottaja"
TOLERANCE_M = 0.05


@cache
def site() -> Site:
    return helsinki()


@cache
def sortie() -> SortiePlan:
    s = site()
    flight = FlightPlanner(s.airspace, max_alt_m=max(s.cruise_layers_m))
    drop = s.drop_points[near_drop_point(s, DEPOT, "drone", lo_m=300.0, hi_m=700.0)]
    slot = VehicleSlot("quad-1", s.vehicle_model("quad-x4"), DEPOT, s.depots[DEPOT].pads[0].xy_m, 100.0)
    return plan_sortie(s, flight, "order-1", drop.xy_m, slot, 1.0)


def planner_with(*zones: NoFlyZone) -> tuple[FlightPlanner, Airspace]:
    s = site()
    flight = FlightPlanner(s.airspace, max_alt_m=max(s.cruise_layers_m))
    for zone in zones:
        flight.add_zone(zone)  # as dispatch does when the operator adds one
    return flight, flight.airspace


def line(plan_points: tuple[tuple[float, float], ...]) -> shapely.LineString:
    return shapely.LineString(site().frame.points_to_local(np.asarray(plan_points, dtype=np.float64)))


def along_out(fraction: float) -> tuple[float, float, int]:
    """(lat, lon) a fraction of the way out, and the seq of the waypoint the drone flies to there."""
    plan = sortie()
    out = line(plan.out_wgs84)
    point = out.interpolate(fraction, normalized=True)
    lat, lon = site().frame.to_wgs84(point.x, point.y)
    coords = np.asarray(out.coords)
    travelled = np.r_[0.0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]
    ahead = int(np.argmax(travelled > fraction * out.length))  # index into out_wgs84
    items, _ = mission(plan)
    seqs = px4.mission_seq_of_item(items, px4.mission_items(items, "drone", takeoff_at=plan.out_wgs84[0]))
    return float(lat), float(lon), seqs[ahead]  # item k is the waypoint at out_wgs84[k] (item 0: take-off)


def along_back(fraction: float) -> tuple[float, float, int]:
    """The same on the way home (after the release: the climb back over the drop is back_wgs84[0])."""
    plan = sortie()
    back = line(plan.back_wgs84)
    point = back.interpolate(fraction, normalized=True)
    lat, lon = site().frame.to_wgs84(point.x, point.y)
    coords = np.asarray(back.coords)
    travelled = np.r_[0.0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]
    ahead = int(np.argmax(travelled > fraction * back.length))
    return float(lat), float(lon), plan.handoff_seq + 1 + ahead


def circle_on_out(fraction: float, radius_m: float, zone_id: str = "heli") -> NoFlyZone:
    point = line(sortie().out_wgs84).interpolate(fraction, normalized=True)
    return NoFlyZone.make_circle(zone_id, "emergency helicopter", point.x, point.y, radius_m)


def clearance_m(zone: NoFlyZone, geometry: shapely.Geometry) -> float:
    if zone.circle is not None:
        x, y, r = zone.circle
        return float(shapely.Point(x, y).distance(geometry)) - r
    return float(zone.shape.distance(geometry))


def assert_clear(reroute_: Reroute, airspace: Airspace) -> None:
    """The planner's own promise: the whole remaining route keeps the site's buffer from every zone."""
    route = line((*reroute_.plan.out_wgs84, *reroute_.plan.back_wgs84))
    for zone in airspace.active_zones(None, 0.0, max(site().cruise_layers_m)):
        assert clearance_m(zone, route) >= site().buffer_m - TOLERANCE_M, zone.zone_id


def assert_seqs_match(reroute_: Reroute) -> list[px4.RawItem]:
    plan, items = reroute_.plan, reroute_.items
    rebuilt, placed = mission(SortiePlan.from_json(plan.to_json()))  # as a restarted service rebuilds it
    assert rebuilt == items
    assert placed == plan
    raw = px4.mission_items(items, "drone")  # no TakeOff: needs no take-off position
    assert plan.mission_total == len(raw)
    assert not any(isinstance(item, TakeOff) for item in items)
    assert raw[-1].command == px4.MAV_CMD_NAV_LAND
    home = plan.back_wgs84[-1]
    assert (raw[-1].x, raw[-1].y) == (round(home[0] * 1e7), round(home[1] * 1e7))
    return raw


def test_a_zone_across_the_way_ahead_is_avoided_from_where_the_drone_is() -> None:
    plan, zone = sortie(), circle_on_out(0.6, 40.0)
    flight, airspace = planner_with(zone)
    lat, lon, seq = along_out(0.2)
    assert affected(site(), airspace, plan, seq, (lat, lon))
    assert not affected(site(), site().airspace, plan, seq, (lat, lon))  # the sortie as planned was clear

    r = reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                delivered=False, model=site().vehicle_model("quad-x4"), payload_kg=1.0, battery_percent=80.0)
    assert_clear(r, airspace)
    assert not affected(site(), airspace, r.plan, 0, (lat, lon))
    assert "heli" in r.reason
    assert r.fence_from_seq == 0
    raw = assert_seqs_match(r)
    # Continues from here: first the leg's speed, then a waypoint where the drone is, at the layer.
    assert [raw[0].command, raw[1].command] == [px4.MAV_CMD_DO_CHANGE_SPEED, px4.MAV_CMD_NAV_WAYPOINT]
    assert raw[0].current == 1
    assert math.dist((raw[1].x * 1e-7, raw[1].y * 1e-7), (lat, lon)) < 1e-6
    assert raw[1].z == plan.cruise_alt_m
    assert raw[1].param2 > 0
    # ... and the same release as a fresh mission, over the same drop point.
    drop = plan.out_wgs84[-1]
    assert r.plan.out_wgs84[-1] == pytest.approx(drop)
    assert (raw[r.plan.drop_seq].command, raw[r.plan.drop_seq].z) == (px4.MAV_CMD_NAV_WAYPOINT, RELEASE_ALT_M)
    hold = raw[r.plan.hold_seq]  # a waypoint with a hold time over the drop point (PX4 sinks in a NAV_DELAY)
    assert (hold.command, hold.param1, hold.z) == (px4.MAV_CMD_NAV_WAYPOINT, RELEASE_HOLD_S, RELEASE_ALT_M)
    assert raw[r.plan.handoff_seq].command == px4.MAV_CMD_DO_GRIPPER
    assert r.plan.drop_seq < r.plan.hold_seq < r.plan.handoff_seq
    # The rest re-priced: from a fifth of the way out, less than the whole round trip.
    assert 0 < r.plan.outbound_s < r.plan.round_trip_s < plan.round_trip_s + 60.0
    assert 0 < r.plan.energy_wh < plan.energy_wh + 5.0
    assert r.replanned_m > line(plan.out_wgs84).length * 0.8
    # Its fence keeps the new zone and stays off the new route (PX4 would refuse the mission).
    fence = fence_for(site(), airspace, r.plan)
    route = line((*r.plan.out_wgs84, *r.plan.back_wgs84))
    assert any(isinstance(f, ExclusionCircle) and f.radius_m == 40.0 for f in fence)
    for item in fence:
        if isinstance(item, ExclusionPolygon):
            assert not shapely.Polygon(site().frame.points_to_local(np.asarray(item.vertices))).intersects(route)


def test_zones_off_the_way_ahead_leave_the_sortie_alone() -> None:
    plan = sortie()
    s = site()
    depot = s.depots[DEPOT].xy_m
    far = NoFlyZone.make_circle("far", "crane", depot[0] - 800.0, depot[1] + 800.0, 50.0)
    lat, lon, seq = along_out(0.5)
    assert not affected(s, s.airspace.with_zone(far), plan, seq, (lat, lon))
    # Above the layer the drone flies at: not in its way.
    high = circle_on_out(0.7, 40.0, "high")
    high = NoFlyZone("high", "balloon", high.shape, floor_m=plan.cruise_alt_m + 20.0, circle=high.circle)
    assert not affected(s, s.airspace.with_zone(high), plan, seq, (lat, lon))
    # On the way out, once the drone is past it and on its way back elsewhere: a delivered sortie's
    # remaining part is the way home only.
    near_drop = circle_on_out(0.97, 15.0, "near-drop")
    hlat, hlon, hseq = along_back(0.6)
    assert affected(s, s.airspace.with_zone(near_drop), plan, seq, (lat, lon))  # still to be flown
    assert not affected(s, s.airspace.with_zone(near_drop), plan, hseq, (hlat, hlon))


def test_robots_are_never_affected() -> None:
    s = site()
    drop = s.drop_points[near_drop_point(s, DEPOT, "robot", lo_m=100.0, hi_m=400.0)]
    slot = VehicleSlot("robot-1", s.vehicle_model("sidewalk-bot"), DEPOT, s.depots[DEPOT].xy_m, 100.0)
    plan = plan_sortie(s, FlightPlanner(s.airspace), "order-2", drop.xy_m, slot, 1.0)
    path = line(plan.out_wgs84).interpolate(0.5, normalized=True)
    zone = NoFlyZone.make_circle("over-robot", "helicopter", path.x, path.y, 80.0)
    assert not affected(s, s.airspace.with_zone(zone), plan, 0, None)


def test_a_drop_point_inside_the_new_zone_fails_and_the_way_home_remains() -> None:
    plan, zone = sortie(), circle_on_out(1.0, 30.0)
    flight, airspace = planner_with(zone)
    lat, lon, seq = along_out(0.4)
    with pytest.raises(DropoffInsideZone) as caught:
        reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                delivered=False)
    assert caught.value.zone_id == "heli"
    home = reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                   delivered=True, payload_kg=1.0)  # the parcel comes back
    assert home.plan.route == "home"
    assert (home.plan.drop_seq, home.plan.hold_seq, home.plan.handoff_seq) == (-1, -1, -1)
    assert not any(isinstance(item, Delay | PayloadRelease) for item in home.items)
    assert isinstance(home.items[0], Waypoint)
    assert isinstance(home.items[-1], Land)
    assert home.plan.outbound_s == 0.0
    assert home.plan.round_trip_s > 0
    assert_seqs_match(home)
    assert_clear(home, airspace)


def test_after_the_release_only_the_way_home_is_replanned() -> None:
    plan, zone = sortie(), circle_on_out(0.5, 35.0)
    flight, airspace = planner_with(zone)
    lat, lon, seq = along_back(0.1)
    assert seq > plan.handoff_seq
    assert affected(site(), airspace, plan, seq, (lat, lon))
    r = reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                delivered=True)
    assert r.plan.route == "home"
    assert len(r.plan.out_wgs84) == 1
    assert assert_seqs_match(r)[0].command == px4.MAV_CMD_DO_CHANGE_SPEED
    assert_clear(r, airspace)
    assert r.plan.back_wgs84[-1] == pytest.approx(plan.back_wgs84[-1])


def test_a_drone_caught_inside_the_buffer_flies_out_first() -> None:
    plan, zone = sortie(), circle_on_out(0.5, 30.0)
    flight, airspace = planner_with(zone)
    x, y, r_m = zone.circle or (0.0, 0.0, 0.0)
    lat, lon = site().frame.to_wgs84(x + r_m + 4.0, y)  # 4 m outside the zone, inside its 10 m buffer
    _, _, seq = along_out(0.5)
    r = reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                delivered=False)
    assert r.reason.startswith("out of zone heli")
    start = line(r.plan.out_wgs84[:1] * 2).coords[0]
    assert math.dist(start, (x, y)) >= r_m + site().buffer_m  # the first waypoint is out of the buffer
    assert r.fence_from_seq == 2  # the fence goes up once that waypoint (seq 1) is reached
    assert_clear(r, airspace)
    assert_seqs_match(r)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.15, 0.9), st.floats(12.0, 70.0), st.floats(-40.0, 40.0))
def test_rerouted_paths_never_enter_a_random_zone(fraction: float, radius_m: float, offset_m: float) -> None:
    plan = sortie()
    centre = line(plan.out_wgs84).interpolate(fraction, normalized=True)
    zone = NoFlyZone.make_circle("random", "test", centre.x + offset_m, centre.y - offset_m, radius_m)
    flight, airspace = planner_with(zone)
    lat, lon, seq = along_out(0.1)
    try:
        r = reroute(site(), flight, airspace, plan, position=(lat, lon, plan.cruise_alt_m), current_seq=seq,
                    delivered=False)
    except PlanningError:
        return  # no way (e.g. the drop point is in it): a typed refusal, never a path through it
    assert_clear(r, airspace)
    assert_seqs_match(r)
