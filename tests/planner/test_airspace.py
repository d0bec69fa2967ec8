"""No-fly zones, time windows, altitude bands, safety buffers and the geofence export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.airspace import CIRCLE_SIDES, Airspace, NoFlyZone, circumscribed_circle, grow, shrink

AREA = shapely.box(0.0, 0.0, 500.0, 400.0)


def star(seed: int, cx: float, cy: float, radius_m: float, vertices: int) -> shapely.Polygon:
    """A random star-shaped (hence simple) polygon, often non-convex."""
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * math.pi, vertices))
    angles = np.unique(np.round(angles, 3))
    reach = rng.uniform(0.3 * radius_m, radius_m, len(angles))
    poly = shapely.Polygon(np.column_stack([cx + reach * np.cos(angles), cy + reach * np.sin(angles)]))
    return poly if poly.is_valid and poly.area > 1.0 else shapely.box(cx - 5, cy - 5, cx + 5, cy + 5)


def square_zone(zone_id: str = "sq", **kw: object) -> NoFlyZone:
    return NoFlyZone(zone_id, "stadium", shapely.box(100.0, 100.0, 200.0, 200.0), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ zones


def test_zone_rejects_inverted_band_and_window() -> None:
    with pytest.raises(ValueError, match="floor"):
        square_zone(floor_m=50.0, ceiling_m=20.0)
    with pytest.raises(ValueError, match="window"):
        square_zone(active_from_s=100.0, active_until_s=50.0)
    with pytest.raises(ValueError, match="zone_id"):
        NoFlyZone("", "x", shapely.box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="valid"):
        NoFlyZone("bow", "x", shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]))


def test_time_window_is_half_open_and_none_means_always() -> None:
    zone = square_zone(active_from_s=1000.0, active_until_s=2000.0)
    assert zone.is_active(None)
    assert not zone.is_active(999.9)
    assert zone.is_active(1000.0)
    assert zone.is_active(1999.9)
    assert not zone.is_active(2000.0)
    open_end = square_zone(active_from_s=1000.0)
    assert open_end.is_active(1e12)
    assert not open_end.is_active(0.0)
    open_start = square_zone(active_until_s=1000.0)
    assert open_start.is_active(-1e12)
    assert not open_start.is_active(1000.0)


def test_active_during_an_interval() -> None:
    zone = square_zone(active_from_s=1000.0, active_until_s=2000.0)
    assert zone.is_active_during(500.0, 1000.0)
    assert zone.is_active_during(1500.0, 1600.0)
    assert zone.is_active_during(1999.0, 5000.0)
    assert not zone.is_active_during(2000.0, 5000.0)
    assert not zone.is_active_during(0.0, 999.0)
    assert zone.is_active_during(None, None)
    assert square_zone().is_active_during(0.0, 1.0)
    space = Airspace(AREA, [zone, square_zone("other", active_from_s=3000.0)])
    assert [z.zone_id for z in space.active_zones(500.0, until_s=1200.0)] == ["sq"]
    assert space.active_zones(500.0) == ()


def test_altitude_band_overlap_is_closed() -> None:
    zone = square_zone(floor_m=60.0, ceiling_m=120.0)
    assert zone.in_band(0.0, 60.0)
    assert zone.in_band(120.0, 200.0)
    assert zone.in_band(80.0, 90.0)
    assert not zone.in_band(0.0, 59.9)
    assert not zone.in_band(120.1, 300.0)


def test_circle_zone_contains_the_true_circle() -> None:
    zone = NoFlyZone.make_circle("c", "hospital", 50.0, 60.0, 30.0, floor_m=0.0, ceiling_m=90.0)
    assert zone.circle == (50.0, 60.0, 30.0)
    assert zone.ceiling_m == 90.0
    true_circle = shapely.Point(50.0, 60.0).buffer(30.0 - 1e-9, quad_segs=64)
    assert zone.shape.covers(true_circle)
    assert len(zone.shape.exterior.coords) - 1 == CIRCLE_SIDES
    # Circumscribed: each edge touches the circle, so the overshoot is small.
    assert zone.shape.exterior.distance(shapely.Point(50.0, 60.0)) == pytest.approx(30.0, rel=1e-9)
    with pytest.raises(ValueError, match="radius"):
        circumscribed_circle(0.0, 0.0, 0.0)


@pytest.mark.parametrize("buffer_m", [0.0, 3.0, 10.0])
def test_buffered_circle_keeps_radius_plus_buffer(buffer_m: float) -> None:
    zone = NoFlyZone.make_circle("c", "x", 10.0, -5.0, 20.0)
    grown = zone.buffered(buffer_m)
    assert grown.exterior.distance(shapely.Point(10.0, -5.0)) >= 20.0 + buffer_m - 1e-9


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    vertices=st.integers(3, 14),
    buffer_m=st.floats(0.5, 25.0),
)
def test_grown_polygon_keeps_at_least_the_buffer(seed: int, vertices: int, buffer_m: float) -> None:
    poly = star(seed, 0.0, 0.0, 40.0, vertices)
    grown = grow(poly, buffer_m)
    assert grown.is_valid
    assert grown.covers(poly)
    # Every point of the grown outline is at least buffer_m from the zone (chords lie outside).
    assert poly.distance(grown.exterior) >= buffer_m - 1e-9
    # ...and not absurdly more (the scale-up is a few per cent).
    outline = shapely.points(np.asarray(grown.exterior.coords))
    assert float(shapely.distance(poly, outline).max()) <= buffer_m * 1.05 + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), buffer_m=st.floats(0.5, 15.0))
def test_shrunk_area_keeps_the_buffer_from_the_boundary(seed: int, buffer_m: float) -> None:
    area = star(seed, 0.0, 0.0, 200.0, 9)
    inner = shrink(area, buffer_m)
    if inner.is_empty:
        return
    assert area.covers(inner)
    assert area.exterior.distance(inner) >= buffer_m - 1e-9


def test_polygon_holes_are_filled_when_buffered() -> None:
    ring = shapely.box(0, 0, 100, 100).difference(shapely.box(40, 40, 60, 60))
    zone = NoFlyZone("donut", "x", ring)
    assert zone.buffered(0.0).covers(shapely.Point(50, 50))
    assert zone.buffered(2.0).covers(shapely.Point(50, 50))


# ------------------------------------------------------------------ airspace


def test_airspace_rejects_duplicates_and_bad_buffer() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Airspace(AREA, [square_zone("a"), square_zone("a")])
    with pytest.raises(ValueError, match="buffer"):
        Airspace(AREA, [], buffer_m=-1.0)
    space = Airspace(AREA, [square_zone("a")])
    with pytest.raises(ValueError, match="duplicate"):
        space.with_zone(square_zone("a"))
    assert "b" in space.with_zone(square_zone("b"))
    assert "a" not in space.without_zone("a")
    assert space.zone("a").reason == "stadium"
    with pytest.raises(KeyError):
        space.without_zone("nope")


def test_active_zones_filter_time_and_band() -> None:
    zones = [
        square_zone("always"),
        square_zone("morning", active_from_s=0.0, active_until_s=3600.0),
        square_zone("high", floor_m=150.0),
        square_zone("low", ceiling_m=30.0),
    ]
    space = Airspace(AREA, zones)

    def ids(found: tuple[NoFlyZone, ...]) -> set[str]:
        return {z.zone_id for z in found}

    assert ids(space.active_zones(None)) == {"always", "morning", "high", "low"}
    assert ids(space.active_zones(7200.0)) == {"always", "high", "low"}
    assert ids(space.active_zones(60.0, 0.0, 120.0)) == {"always", "morning", "low"}
    assert ids(space.active_zones(60.0, 50.0, 120.0)) == {"always", "morning"}


def test_zone_at_honours_buffer_altitude_and_time() -> None:
    zones = [
        square_zone("sq", active_until_s=1000.0),
        NoFlyZone.make_circle("tower", "mast", 400.0, 300.0, 20.0, floor_m=50.0),
    ]
    space = Airspace(AREA, zones, buffer_m=10.0)
    assert space.zone_at((150.0, 150.0), 10.0, 0.0) == zones[0]
    assert space.zone_at((95.0, 150.0), 10.0, 0.0) == zones[0]  # in the buffer
    assert space.zone_at((95.0, 150.0), 10.0, 0.0, buffered=False) is None
    assert space.zone_at((150.0, 150.0), 10.0, 1000.0) is None  # expired
    assert space.zone_at((400.0, 300.0), 10.0, 0.0) is None  # below the mast zone's floor
    assert space.zone_at((400.0, 300.0), 60.0, 0.0) == zones[1]
    assert space.zone_at((300.0, 50.0), 60.0, 0.0) is None


def test_flyable_area_is_the_area_minus_the_buffer() -> None:
    space = Airspace(AREA, [], buffer_m=10.0)
    flyable = space.flyable_area()
    assert flyable.bounds == pytest.approx((10.0, 10.0, 490.0, 390.0), abs=0.5)
    assert AREA.exterior.distance(flyable) >= 10.0 - 1e-9


def test_fence_exports_area_zones_and_circles_in_local_metres() -> None:
    area = shapely.Polygon(
        [(0, 0), (500, 0), (500, 400), (0, 400)], [[(10, 10), (20, 10), (20, 20), (10, 20)]]
    )
    zones = [
        square_zone("sq"),
        NoFlyZone.make_circle("heli", "helipad", 300.0, 300.0, 25.0),
        square_zone("later", active_from_s=5000.0),
        square_zone("high", floor_m=200.0),
    ]
    fence = Airspace(area, zones, buffer_m=10.0).fence(at_s=0.0, max_alt_m=120.0)
    assert fence.zone_ids == ("sq", "heli")
    assert fence.inclusion.shape == (4, 2)
    assert shapely.Polygon(fence.inclusion).equals(shapely.Polygon(area.exterior))
    assert fence.exclusion_circles == ((300.0, 300.0, 25.0),)
    assert len(fence.exclusion_polygons) == 2  # the area's hole and the square, unbuffered
    assert any(shapely.Polygon(p).equals(shapely.box(100, 100, 200, 200)) for p in fence.exclusion_polygons)
    assert any(shapely.Polygon(p).equals(shapely.box(10, 10, 20, 20)) for p in fence.exclusion_polygons)
    every = Airspace(area, zones).fence()
    assert set(every.zone_ids) == {"sq", "heli", "later", "high"}
