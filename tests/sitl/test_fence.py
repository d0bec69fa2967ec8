"""Geofence geometry: PX4's inclusion/exclusion semantics, circles, mission checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.geo import LocalFrame
from sitl.fence import Geofence, invalid_fence_item

HOME = (47.397742, 8.545594)
FRAME = LocalFrame(*HOME)  # one pyproj transformer for the whole module


@dataclass(frozen=True)
class Item:
    seq: int
    command: int
    param1: float
    x: int
    y: int


def at(north_m: float, east_m: float) -> tuple[int, int]:
    lat, lon = FRAME.to_wgs84(east_m, north_m)
    return round(lat * 1e7), round(lon * 1e7)


def ll(north_m: float, east_m: float) -> tuple[float, float]:
    return FRAME.to_wgs84(east_m, north_m)


def polygon(command: int, corners: Sequence[tuple[float, float]], start: int = 0) -> list[Item]:
    return [Item(start + i, command, float(len(corners)), *at(n, e)) for i, (n, e) in enumerate(corners)]


def square(half_m: float, n0: float = 0.0, e0: float = 0.0) -> list[tuple[float, float]]:
    return [(n0 + half_m, e0 - half_m), (n0 + half_m, e0 + half_m), (n0 - half_m, e0 + half_m),
            (n0 - half_m, e0 - half_m)]


def reference_fence() -> Geofence:
    """The capture's fence: ±300 m inclusion, 40 m exclusion square at 150 S 150 W, 25 m circle at 150 S 150 E."""
    items = polygon(5001, square(300)) + polygon(5002, square(20, -150, -150), start=4)
    items.append(Item(8, 5004, 25.0, *at(-150, 150)))
    return Geofence.from_items(items)


def test_empty_fence_contains_everything() -> None:
    fence = Geofence.from_items([])
    assert fence.is_empty
    assert fence.contains(0.0, 0.0)
    assert fence.first_violation([Item(0, 16, 0, *at(5000, 0))], HOME) is None


def test_inclusion_polygon_with_exclusions() -> None:
    fence = reference_fence()
    assert not fence.is_empty
    assert fence.contains(*ll(0, 0))
    assert fence.contains(*ll(299, 299))
    assert not fence.contains(*ll(301, 0))
    assert not fence.contains(*ll(0, -305))
    assert not fence.contains(*ll(-150, -150))  # in the exclusion square
    assert not fence.contains(*ll(-135, -165))
    assert fence.contains(*ll(-150, -125))  # 5 m outside that square
    assert not fence.contains(*ll(-150, 150))  # in the exclusion circle
    assert not fence.contains(*ll(-150, 174))  # 24 m from its centre
    assert fence.contains(*ll(-150, 176))  # 26 m


def test_inclusion_circle_and_union_of_inclusions() -> None:
    fence = Geofence.from_items([Item(0, 5003, 100.0, *at(0, 0)), Item(1, 5003, 50.0, *at(0, 300))])
    assert fence.contains(*ll(0, 99))
    assert not fence.contains(*ll(0, 101))
    assert fence.contains(*ll(0, 290))  # inside the second inclusion only: PX4 takes the union
    assert not fence.contains(*ll(0, 200))


def test_exclusion_only_fence() -> None:
    fence = Geofence.from_items([Item(0, 5004, 30.0, *at(0, 0))])
    assert not fence.contains(*ll(10, 10))
    assert fence.contains(*ll(1000, 1000))


def test_concave_polygon() -> None:
    # A U shape opening north: the notch is outside.
    u = [(100, -100), (100, -50), (0, -50), (0, 50), (100, 50), (100, 100), (-100, 100), (-100, -100)]
    fence = Geofence.from_items(polygon(5001, u))
    assert fence.contains(*ll(50, -75))
    assert not fence.contains(*ll(50, 0))
    assert fence.contains(*ll(-50, 0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-400, 400), st.floats(-400, 400)), min_size=1, max_size=30))
def test_vectorised_contains_agrees_with_scalar(points_ne: list[tuple[float, float]]) -> None:
    fence = reference_fence()
    lat_lon = np.array([ll(n, e) for n, e in points_ne])
    many = fence.contains_many(lat_lon[:, 0], lat_lon[:, 1])
    assert many.tolist() == [fence.contains(lat, lon) for lat, lon in lat_lon]


def test_first_violation_reports_the_first_position_item_outside() -> None:
    fence = reference_fence()
    mission = [
        Item(0, 22, 0.0, *at(0, 0)),
        Item(1, 16, 0.0, *at(50, 0)),
        Item(2, 178, 0.0, 0, 0),  # DO_CHANGE_SPEED: no position, not checked
        Item(3, 16, 0.0, *at(400, 100)),
        Item(4, 21, 0.0, *at(400, 100)),
    ]
    assert fence.first_violation(mission, HOME) == 3
    assert fence.first_violation(mission[:3], HOME) is None
    assert fence.first_violation([Item(0, 16, 0.0, *at(-150, 150))], HOME) == 0


def test_first_violation_zero_position_means_here() -> None:
    fence = reference_fence()
    takeoff_here = Item(0, 22, 0.0, 0, 0)
    assert fence.first_violation([takeoff_here], HOME) is None
    assert fence.first_violation([takeoff_here], ll(1000, 0)) == 0  # home outside the fence
    assert fence.first_violation([takeoff_here], None) is None  # unknown home: not checkable
    # A land at 0/0 lands where the previous waypoint was.
    land_after_outside = [Item(0, 16, 0.0, *at(0, 0)), Item(1, 21, 0.0, 0, 0)]
    assert fence.first_violation(land_after_outside, HOME) is None


@pytest.mark.parametrize(
    ("items", "complete", "expected"),
    [
        (polygon(5001, square(10)), True, None),
        (polygon(5001, square(10))[:2], False, None),  # still uploading
        (polygon(5001, square(10))[:2], True, 1),  # ended early
        ([Item(0, 5001, 2.0, 0, 0)], False, 0),  # two vertices: wrong at once
        ([*polygon(5001, square(10))[:2], Item(2, 5002, 4.0, 0, 0)], False, 2),  # kind changes mid-polygon
        ([*polygon(5001, square(10))[:3], Item(3, 5004, 5.0, 0, 0)], False, 3),  # circle mid-polygon
        ([*polygon(5001, square(10)), Item(4, 5004, 5.0, 0, 0)], True, None),
    ],
)
def test_invalid_fence_item(items: list[Item], complete: bool, expected: int | None) -> None:
    assert invalid_fence_item(items, complete=complete) == expected


def test_from_items_skips_degenerate_polygons() -> None:
    items = [Item(0, 5001, 2.0, *at(0, 0)), Item(1, 5001, 2.0, *at(10, 0)), *polygon(5002, square(5), start=2)]
    fence = Geofence.from_items(items)
    assert len(fence.polygons) == 1
    assert not fence.polygons[0].inclusion
