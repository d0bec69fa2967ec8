"""The track checks on hand-made tracks: zone incursions (active zones, altitude bands, robots
exempt) and the least separation of airborne drones."""

from __future__ import annotations

import pytest

from fleetctl.tracks import Track, min_drone_separation, zone_incursions
from planner.airspace import NoFlyZone


def track(vehicle_id: str, kind: str, points: list[tuple[float, float, float, float]]) -> Track:
    t = Track(vehicle_id, kind)
    for t_s, x, y, z in points:
        t.t_s.append(t_s)
        t.x_m.append(x)
        t.y_m.append(y)
        t.alt_m.append(z)
    return t


def test_incursions_only_count_drones_in_an_active_zone_and_its_band() -> None:
    zone = NoFlyZone.make_circle("z", "test", 0.0, 0.0, 50.0, active_from_s=100.0, ceiling_m=60.0)
    crossing = track("q1", "drone", [(90.0, -100.0, 0.0, 40.0), (110.0, 0.0, 0.0, 40.0), (120.0, 100.0, 0.0, 40.0)])
    early = track("q2", "drone", [(50.0, 0.0, 0.0, 40.0)])  # before the zone was active
    above = track("q3", "drone", [(150.0, 0.0, 0.0, 80.0)])  # over its ceiling
    robot = track("r1", "robot", [(150.0, 0.0, 0.0, 0.0)])  # sidewalks are not airspace
    (found,) = zone_incursions([crossing, early, above, robot], [zone])
    assert (found.vehicle_id, found.zone_id, found.t_s) == ("q1", "z", 110.0)
    assert found.depth_m == pytest.approx(50.0, abs=1.0)
    assert zone_incursions([crossing], [zone], tolerance_m=60.0) == []


def test_least_separation_of_airborne_drones_is_interpolated_between_samples() -> None:
    a = track("q1", "drone", [(0.0, -100.0, 0.0, 40.0), (20.0, 100.0, 0.0, 40.0)])
    b = track("q2", "drone", [(0.0, 0.0, -100.0, 40.0), (20.0, 0.0, 100.0, 40.0)])  # they cross at t=10
    closest = min_drone_separation([a, b])
    assert closest is not None
    assert closest.horizontal_m == pytest.approx(0.0, abs=1e-6)
    assert closest.t_s == pytest.approx(10.0)
    layered = track("q3", "drone", [(0.0, 0.0, -100.0, 70.0), (20.0, 0.0, 100.0, 70.0)])
    assert min_drone_separation([a, layered], vertical_m=15.0) is None  # 30 m apart vertically
    on_pads = [track("q4", "drone", [(0.0, 0.0, 0.0, 0.0), (9.0, 0.0, 0.0, 0.0)]),
               track("q5", "drone", [(0.0, 6.0, 0.0, 0.0), (9.0, 6.0, 0.0, 0.0)])]
    assert min_drone_separation(on_pads) is None  # on the ground: not airborne
    assert track("q6", "drone", [(0.0, 0.0, 0.0, 0.0), (1.0, 3.0, 4.0, 0.0)]).distance_m == pytest.approx(5.0)
