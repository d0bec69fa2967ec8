"""SiteCosts: the depot x drop point cost matrix on the bundled site, its agreement with fleetctl's
trip pricing, the infeasible cases, and incremental updates when no-fly zones come and go."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from fleetctl.trip import drone_trip, robot_trip
from planner.airspace import NoFlyZone
from planner.assign import Costs, Job, TripCost
from planner.costs import DRONE_RELEASE_HOVER_S, ROBOT_HANDOFF_WAIT_S, SiteCosts
from planner.errors import EnergyInfeasible, PlanningError, UnknownZone
from planner.flight import FlightPlanner
from planner.site import Site, load_site
from planner.vehicle_model import VehicleModel
from planner.wind import Wind

BUNDLED = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"
BOTH = frozenset({"drone", "robot"})


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(BUNDLED)


@pytest.fixture(scope="module")
def warm(site: Site) -> SiteCosts:
    costs = SiteCosts(site)
    seen: list[tuple[int, int]] = []
    costs.warm(lambda done, total: seen.append((done, total)))
    assert seen
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1]
    return costs


def drone(site: Site) -> VehicleModel:
    return site.vehicle_models["quad-x4"]


def robot(site: Site) -> VehicleModel:
    return site.vehicle_models["sidewalk-bot"]


def job(
    site: Site, drop: str, weight_kg: float = 1.0, *, kinds: frozenset[str] = BOTH, depot: str | None = None
) -> Job:
    if drop in site.drop_points:
        xy = site.drop_points[drop].xy_m
    elif not drop.startswith("xy:"):
        xy = (0.0, 0.0)
    else:
        x, y = (float(v) for v in drop.removeprefix("xy:").split(","))
        xy = (x, y)
    return Job(f"o-{drop}", kinds, depot, drop, xy, weight_kg, 1, 0.0, 1e12)


def drone_drops(site: Site) -> list[str]:
    return [n for n, d in site.drop_points.items() if d.drone_ok]


def test_is_a_costs_for_the_solver(warm: SiteCosts, site: Site) -> None:
    costs: Costs = warm  # the protocol assign() takes
    name = drone_drops(site)[0]
    found = costs.trip(drone(site), "erottaja", job(site, name))
    assert isinstance(found, TripCost)
    assert found.cruise_alt_m == site.cruise_layers_m[0]
    assert found.outbound_s < found.round_trip_s


def test_matrix_size_and_finiteness(warm: SiteCosts, site: Site) -> None:
    for model, ok in ((drone(site), "drone_ok"), (robot(site), "robot_ok")):
        depots, drops, m = warm.matrix(model, payload_kg=1.0)
        assert depots == list(site.depots)
        assert drops == list(site.drop_points)
        assert m.shape == (len(site.depots), len(site.drop_points))
        admits = np.array([getattr(site.drop_points[d], ok) for d in drops])
        assert np.isinf(m[:, ~admits]).all()  # a drop point that does not admit the kind
        finite = np.isfinite(m)
        assert finite[:, admits].mean() > 0.9  # nearly every admitted drop point is reachable
        assert (m[finite] > 0).all()
        if model.is_drone:
            # at least the climb, descent and release hover; the longest trip is a few minutes
            alt = site.cruise_layers_m[0]
            least = alt / model.climb_speed_m_s + alt / model.descent_speed_m_s + DRONE_RELEASE_HOVER_S
            assert m[finite].min() > least
            assert m[finite].max() < 900.0
        else:
            assert m[finite].min() > ROBOT_HANDOFF_WAIT_S
    _, _, heavy = warm.matrix(drone(site), payload_kg=drone(site).max_payload_kg + 0.1)
    assert np.isinf(heavy).all()


def test_prices_equal_fleetctl_trip(warm: SiteCosts, site: Site) -> None:
    quad, bot = drone(site), robot(site)
    planner = FlightPlanner(site.airspace, max_alt_m=max(site.cruise_layers_m))
    rng = np.random.default_rng(3)
    names = [n for n in drone_drops(site) if site.drop_points[n].robot_ok]
    checked = 0
    for depot in site.depots:
        start = site.depots[depot].xy_m
        for name in rng.choice(names, 4, replace=False).tolist():
            goal = site.drop_points[name].xy_m
            for weight in (0.0, 1.3, quad.max_payload_kg):
                ref, _ = drone_trip(site, planner, start, goal, quad, payload_kg=weight, wind=Wind())
                got = warm.trip(quad, depot, job(site, name, weight))
                assert got is not None
                assert got.round_trip_s == pytest.approx(ref.round_trip_s, rel=1e-12)
                assert got.outbound_s == pytest.approx(ref.outbound_s, rel=1e-12)
                assert got.energy_wh == pytest.approx(ref.round_trip_wh, rel=1e-12)
                assert got.cruise_alt_m == ref.cruise_alt_m
                high = warm.layer_cost(quad, depot, job(site, name, weight), 70.0)
                ref_high, _ = drone_trip(
                    site, planner, start, goal, quad, payload_kg=weight, wind=Wind(), cruise_alt_m=70.0
                )
                assert high is not None
                assert high.round_trip_s == pytest.approx(ref_high.round_trip_s, rel=1e-12)
                assert high.energy_wh == pytest.approx(ref_high.round_trip_wh, rel=1e-12)
                assert high.cruise_alt_m == 70.0
                assert high.round_trip_s > got.round_trip_s  # a higher layer: longer climb and descent
                robot_ref, _ = robot_trip(site, start, goal, bot, payload_kg=weight)
                robot_got = warm.trip(bot, depot, job(site, name, weight))
                assert robot_got is not None
                assert robot_got.round_trip_s == pytest.approx(robot_ref.round_trip_s, rel=1e-12)
                assert robot_got.outbound_s == pytest.approx(robot_ref.outbound_s, rel=1e-12)
                assert robot_got.energy_wh == pytest.approx(robot_ref.round_trip_wh, rel=1e-12)
                assert robot_got.cruise_alt_m is None
                checked += 1
    assert checked == 24


def test_prices_equal_fleetctl_in_wind_and_on_a_small_battery(site: Site) -> None:
    wind = Wind(8.0, 250.0)
    costs = SiteCosts(site, wind=wind)
    planner = FlightPlanner(site.airspace, max_alt_m=max(site.cruise_layers_m))
    small = dataclasses.replace(drone(site), battery_wh=60.0)  # some trips fit, some do not
    fits = misses = 0
    for name in drone_drops(site)[:40:4]:
        start, goal = site.depots["erottaja"].xy_m, site.drop_points[name].xy_m
        got = costs.trip(small, "erottaja", job(site, name, 2.0))
        try:
            ref, _ = drone_trip(site, planner, start, goal, small, payload_kg=2.0, wind=wind)
        except EnergyInfeasible:
            assert got is None
            misses += 1
            continue
        assert got is not None
        assert got.round_trip_s == pytest.approx(ref.round_trip_s, rel=1e-12)
        assert got.energy_wh == pytest.approx(ref.round_trip_wh, rel=1e-12)
        assert got.outbound_s == pytest.approx(ref.outbound_s, rel=1e-12)
        fits += 1
    assert fits
    assert misses


def test_infeasible_cases_are_none(warm: SiteCosts, site: Site) -> None:
    quad, bot = drone(site), robot(site)
    both_ok = next(n for n in drone_drops(site) if site.drop_points[n].robot_ok)
    assert warm.trip(quad, "erottaja", job(site, both_ok)) is not None
    # the order's kinds, the pickup depot, the payload
    assert warm.trip(quad, "erottaja", job(site, both_ok, kinds=frozenset({"robot"}))) is None
    assert warm.trip(bot, "erottaja", job(site, both_ok, kinds=frozenset({"drone"}))) is None
    assert warm.trip(quad, "erottaja", job(site, both_ok, depot="kruununhaka")) is None
    assert warm.trip(quad, "kruununhaka", job(site, both_ok, depot="kruununhaka")) is not None
    assert warm.trip(quad, "erottaja", job(site, both_ok, quad.max_payload_kg + 0.01)) is None
    assert warm.trip(bot, "erottaja", job(site, both_ok, quad.max_payload_kg + 0.01)) is not None
    # the drop point's own admission
    no_drone = next(n for n, d in site.drop_points.items() if not d.drone_ok and d.robot_ok)
    no_robot = next(n for n, d in site.drop_points.items() if d.drone_ok and not d.robot_ok)
    assert warm.trip(quad, "erottaja", job(site, no_drone)) is None
    assert warm.trip(bot, "erottaja", job(site, no_drone)) is not None
    assert warm.trip(bot, "erottaja", job(site, no_robot)) is None
    assert warm.trip(quad, "erottaja", job(site, no_robot)) is not None
    # the battery: a far trip a small pack cannot make above its reserve
    tiny = dataclasses.replace(quad, battery_wh=20.0)
    assert warm.trip(tiny, "erottaja", job(site, both_ok)) is None
    assert "reserve" in (warm.why_not(tiny, "erottaja", job(site, both_ok)) or "")
    # no path: a coordinate outside the operating area; no route: far off the sidewalks
    outside = job(site, "xy:2000.0,0.0")
    assert warm.trip(quad, "erottaja", outside) is None
    assert "outside the operating area" in (warm.why_not(quad, "erottaja", outside) or "")
    assert warm.trip(bot, "erottaja", outside) is None
    assert warm.trip(quad, "erottaja", job(site, "nowhere-17")) is None  # an unknown drop point
    assert warm.why_not(quad, "erottaja", job(site, both_ok)) is None
    # the wind: above the drone's limit, within the robot's
    windy = SiteCosts(site, wind=Wind(quad.max_wind_m_s + 1.0, 90.0))
    assert windy.trip(quad, "erottaja", job(site, both_ok)) is None
    assert windy.trip(bot, "erottaja", job(site, both_ok)) is not None
    with pytest.raises(ValueError, match="weight_kg"):
        warm.trip(quad, "erottaja", job(site, both_ok, -1.0))
    with pytest.raises(ValueError, match="drones"):
        warm.layer_cost(bot, "erottaja", job(site, both_ok), 55.0)
    with pytest.raises(ValueError, match="layer_m"):
        warm.layer_cost(quad, "erottaja", job(site, both_ok), max(site.cruise_layers_m) + 1.0)


def test_coordinates_are_priced_on_demand_and_cached(warm: SiteCosts, site: Site) -> None:
    x, y = site.drop_points[drone_drops(site)[5]].xy_m
    free = job(site, f"xy:{x + 3.0:.1f},{y - 2.0:.1f}", 1.0)
    a = warm.trip(drone(site), "kruununhaka", free)
    assert a is not None
    assert warm.trip(drone(site), "kruununhaka", free) is a
    b = warm.trip(robot(site), "kruununhaka", free)
    assert b is not None
    assert warm.trip(robot(site), "kruununhaka", free) is b
    assert warm.flight_plan(drone(site), "kruununhaka", free) is warm.flight_plan(
        drone(site), "kruununhaka", free
    )
    route = warm.route("kruununhaka", free)
    assert route is not None
    assert tuple(route.points[-1].tolist()) == free.dropoff_xy_m


# ---- zones come and go ------------------------------------------------------------------------


def _plans(costs: SiteCosts, site: Site, names: list[str]) -> dict[tuple[str, str], object]:
    quad = drone(site)
    return {(d, n): costs.flight_plan(quad, d, job(site, n)) for d in site.depots for n in names}


def _lengths(plans: dict[tuple[str, str], object]) -> dict[tuple[str, str], float | None]:
    return {k: (None if p is None else p.path.length_m) for k, p in plans.items()}  # type: ignore[attr-defined]


def _same_as_fresh(costs: SiteCosts, site: Site, names: list[str], zones: list[NoFlyZone]) -> None:
    """The incrementally updated entries equal those of a SiteCosts planned with the zones from the start."""
    fresh = SiteCosts(site)
    for zone in zones:
        fresh.add_zone(zone)
    got, ref = _lengths(_plans(costs, site, names)), _lengths(_plans(fresh, site, names))
    assert got.keys() == ref.keys()
    for key in got:
        a, b = got[key], ref[key]
        assert (a is None) == (b is None), key
        if a is not None and b is not None:
            assert a == pytest.approx(b, rel=1e-9), key


def test_zone_over_a_drop_point_stops_drones_there_only(site: Site) -> None:
    quad, bot = drone(site), robot(site)
    names = [n for n in drone_drops(site) if site.drop_points[n].robot_ok][:30]
    target = names[7]
    costs = SiteCosts(site)
    before = _plans(costs, site, names)
    robot_before = {d: costs.trip(bot, d, job(site, target)) for d in site.depots}
    assert all(before[(d, target)] is not None for d in site.depots)
    x, y = site.drop_points[target].xy_m
    zone = NoFlyZone.make_circle("crane", "crane at work", x, y, 15.0)
    replanned = costs.add_zone(zone)
    assert 2 <= replanned < len(before)
    for d in site.depots:
        assert costs.trip(quad, d, job(site, target)) is None
        assert "crane" in (costs.why_not(quad, d, job(site, target)) or "")
        assert costs.trip(bot, d, job(site, target)) is robot_before[d]  # zones close no sidewalks
    after = _plans(costs, site, names)
    near = shapely.Point(x, y).buffer(15.0 + site.buffer_m + 1.0)
    for key, plan in before.items():
        if plan is not None and not near.intersects(shapely.LineString(plan.path.points)):  # type: ignore[attr-defined]
            assert after[key] is plan  # untouched: the very same object, not replanned
    _same_as_fresh(costs, site, names, [zone])
    assert costs.remove_zone("crane") >= 2
    restored = _plans(costs, site, names)
    assert _lengths(restored) == pytest.approx(_lengths(before))
    with pytest.raises(UnknownZone):
        costs.remove_zone("crane")


def test_zone_across_a_path_detours_it_and_leaves_the_rest(site: Site) -> None:
    quad = drone(site)
    names = drone_drops(site)[:60]
    costs = SiteCosts(site)
    before = _plans(costs, site, names)
    prices = {k: costs.trip(quad, k[0], job(site, k[1])) for k in before}
    # the longest straight flight from erottaja; a zone across its middle
    straight = [
        (k, p) for k, p in before.items() if k[0] == "erottaja" and p is not None and len(p.path.points) == 2
    ]  # type: ignore[attr-defined]
    key, plan = max(straight, key=lambda kp: kp[1].path.length_m)  # type: ignore[attr-defined]
    a, b = plan.path.points  # type: ignore[attr-defined]
    mid = (a + b) / 2
    zone = NoFlyZone.make_circle("event", "public event", float(mid[0]), float(mid[1]), 20.0)
    replanned = costs.add_zone(zone)
    after = _plans(costs, site, names)
    longer = after[key]
    assert longer is not None
    assert longer.path.length_m > plan.path.length_m + 1.0  # type: ignore[attr-defined]
    assert 1 <= replanned < len(before) // 2
    untouched = 0
    shape = zone.buffered(site.buffer_m)
    for k, p in before.items():
        if p is not None and not shape.intersects(shapely.LineString(p.path.points)):  # type: ignore[attr-defined]
            assert after[k] is p
            assert costs.trip(quad, k[0], job(site, k[1])) is prices[k]  # the price too
            untouched += 1
    assert untouched >= len(before) - replanned - 5
    _same_as_fresh(costs, site, names, [zone])
    # removing it replans what the zone can have changed, and the paths come back
    costs.remove_zone("event")
    restored = _plans(costs, site, names)
    assert _lengths(restored) == pytest.approx(_lengths(before))
    assert restored[key] is not plan
    kept = sum(restored[k] is after[k] for k in before if after[k] is not None)
    assert kept > len(before) // 2  # far-away entries are not replanned on removal either


def test_removing_a_site_zone_shortens_what_it_detoured(site: Site) -> None:
    names = drone_drops(site)[::5]
    costs = SiteCosts(site)
    before = _lengths(_plans(costs, site, names))
    gone = "office-government-1"  # a large zone in the middle of the site
    costs.remove_zone(gone)
    after = _lengths(_plans(costs, site, names))
    shorter = [
        k for k in before if before[k] is not None and after[k] is not None and after[k] < before[k] - 1e-6
    ]  # type: ignore[operator]
    assert shorter
    assert all(after[k] is not None for k in before if before[k] is not None)
    ref = SiteCosts(dataclasses.replace(site, zones=tuple(z for z in site.zones if z.zone_id != gone)))
    expected = _lengths(_plans(ref, site, names))
    for k in before:
        if expected[k] is None:
            assert after[k] is None
        else:
            assert after[k] == pytest.approx(expected[k], rel=1e-9)


def test_zone_changes_before_any_planning(site: Site) -> None:
    costs = SiteCosts(site)
    x, y = site.drop_points[drone_drops(site)[0]].xy_m
    assert costs.add_zone(NoFlyZone.make_circle("early", "test", x, y, 15.0)) == 0
    assert costs.trip(drone(site), "erottaja", job(site, drone_drops(site)[0])) is None
    assert costs.remove_zone("early") >= 1  # planned by then: the failed entry is tried again
    assert costs.trip(drone(site), "erottaja", job(site, drone_drops(site)[0])) is not None
    with pytest.raises(UnknownZone):
        SiteCosts(site).remove_zone("never")
    with pytest.raises(PlanningError):
        SiteCosts(site).remove_zone("never")
    assert math.isfinite(costs.max_layer_m)
