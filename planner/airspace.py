"""No-fly zones, the operating area and the safety buffer between them and a drone's path.

Everything is in the site's local metres. A zone is a polygon or a circle with an altitude
band (AGL) and an optional active time window; the planner has no clock, so callers pass the
time (`at_s`, epoch seconds) they plan for.

Safety buffers are applied so that the buffered shapes are never smaller than the true offset:
curved parts of an offset are approximated by chords, so the offset distance is scaled up until
every chord lies at least `buffer_m` from the original shape (circles become circumscribed
polygons for the same reason). A path kept outside the buffered shapes therefore keeps at least
`buffer_m` from every zone and from the area boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

FloatArray = npt.NDArray[np.float64]

#: Polygon sides used for a circle (circumscribed, so the polygon contains the circle).
CIRCLE_SIDES = 24
# GEOS approximates a round join of angle a with round(a / q) chords, q = pi / (2 * quad_segs), so
# one chord may span up to 1.5 q; scaling the distance by 1 / cos(0.75 q) puts every chord outside.
_QUAD_SEGS = 4
_ROUND_SCALE = 1.0 / math.cos(0.75 * math.pi / (2 * _QUAD_SEGS))


def circumscribed_circle(
    x_m: float, y_m: float, radius_m: float, sides: int = CIRCLE_SIDES
) -> shapely.Polygon:
    """A regular polygon whose edges touch the circle from outside (it contains the circle)."""
    if not radius_m > 0:
        raise ValueError(f"circle radius must be > 0, got {radius_m}")
    outer_m = radius_m / math.cos(math.pi / sides)
    angles = np.arange(sides) * (2 * math.pi / sides)
    ring = np.column_stack([x_m + outer_m * np.cos(angles), y_m + outer_m * np.sin(angles)])
    return shapely.Polygon(ring)


def grow(polygon: shapely.Polygon, distance_m: float) -> shapely.Polygon:
    """The polygon (holes filled) grown by at least `distance_m` everywhere."""
    filled = shapely.Polygon(polygon.exterior)
    if distance_m <= 0:
        return filled
    grown = filled.buffer(distance_m * _ROUND_SCALE, quad_segs=_QUAD_SEGS)
    return shapely.Polygon(grown.exterior)


def shrink(polygon: shapely.Polygon, distance_m: float) -> shapely.Polygon | shapely.MultiPolygon:
    """The part of `polygon` at least `distance_m` from its boundary (may split or vanish)."""
    if distance_m <= 0:
        return polygon
    shrunk = polygon.buffer(-distance_m * _ROUND_SCALE, quad_segs=_QUAD_SEGS)
    if isinstance(shrunk, shapely.Polygon | shapely.MultiPolygon):
        return shrunk
    return shapely.MultiPolygon([g for g in getattr(shrunk, "geoms", ()) if isinstance(g, shapely.Polygon)])


@dataclass(frozen=True)
class NoFlyZone:
    """A zone drones must not enter between `floor_m` and `ceiling_m` (AGL) while it is active.

    `active_from_s` / `active_until_s` bound a half-open window [from, until) in epoch seconds;
    None leaves that side open. `circle` = (x_m, y_m, radius_m) when the zone is a circle (then
    `shape` is its circumscribed polygon); it is kept so a geofence can carry a true circle.
    """

    zone_id: str
    reason: str
    shape: shapely.Polygon
    floor_m: float = 0.0
    ceiling_m: float = math.inf
    active_from_s: float | None = None
    active_until_s: float | None = None
    circle: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.zone_id:
            raise ValueError("a no-fly zone needs a non-empty zone_id")
        if not isinstance(self.shape, shapely.Polygon) or self.shape.is_empty or not self.shape.is_valid:
            raise ValueError(f"zone {self.zone_id!r}: shape must be a valid, non-empty shapely Polygon")
        if not self.floor_m < self.ceiling_m:
            raise ValueError(
                f"zone {self.zone_id!r}: floor {self.floor_m} m must be below ceiling {self.ceiling_m} m"
            )
        if (
            self.active_from_s is not None
            and self.active_until_s is not None
            and not self.active_from_s < self.active_until_s
        ):
            raise ValueError(f"zone {self.zone_id!r}: active window ends before it starts")
        if self.circle is not None and not self.circle[2] > 0:
            raise ValueError(f"zone {self.zone_id!r}: circle radius must be > 0")

    @classmethod
    def make_circle(
        cls, zone_id: str, reason: str, x_m: float, y_m: float, radius_m: float, **kw: Any
    ) -> NoFlyZone:
        """A circular zone; keyword arguments are the other fields (floor_m, active_from_s, ...)."""
        shape = circumscribed_circle(x_m, y_m, radius_m)
        return cls(zone_id, reason, shape, circle=(float(x_m), float(y_m), float(radius_m)), **kw)

    def is_active(self, at_s: float | None) -> bool:
        """Whether the zone is in force at `at_s`; None means "at any time" (always active)."""
        if at_s is None:
            return True
        if self.active_from_s is not None and at_s < self.active_from_s:
            return False
        return not (self.active_until_s is not None and at_s >= self.active_until_s)

    def is_active_during(self, from_s: float | None, until_s: float | None) -> bool:
        """Whether the zone is in force at any moment of [from_s, until_s] (None: that side open)."""
        if from_s is not None and self.active_until_s is not None and from_s >= self.active_until_s:
            return False
        return not (until_s is not None and self.active_from_s is not None and until_s < self.active_from_s)

    def in_band(self, floor_m: float, ceiling_m: float) -> bool:
        """Whether the zone's altitude band meets the closed band [floor_m, ceiling_m]."""
        return self.floor_m <= ceiling_m and self.ceiling_m >= floor_m

    def buffered(self, buffer_m: float) -> shapely.Polygon:
        """The zone grown by the safety buffer; never smaller than the true offset."""
        if self.circle is not None:
            x_m, y_m, radius_m = self.circle
            return circumscribed_circle(x_m, y_m, radius_m + max(buffer_m, 0.0))
        return grow(self.shape, buffer_m)


@dataclass(frozen=True)
class Fence:
    """A geofence for upload, in local metres (rings without the closing repeat)."""

    inclusion: FloatArray
    exclusion_polygons: tuple[FloatArray, ...]
    exclusion_circles: tuple[tuple[float, float, float], ...]
    zone_ids: tuple[str, ...]


def _ring(coords: Any) -> FloatArray:
    return np.asarray(coords, dtype=np.float64)[:-1, :2].copy()


@dataclass(frozen=True)
class Airspace:
    """The operating area (an inclusion fence), its no-fly zones and the lateral safety buffer.

    Immutable: `with_zone` / `without_zone` return a changed copy.
    """

    area: shapely.Polygon
    zones: Sequence[NoFlyZone]
    buffer_m: float = 10.0
    _by_id: dict[str, NoFlyZone] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.area, shapely.Polygon) or self.area.is_empty or not self.area.is_valid:
            raise ValueError("the operating area must be a valid, non-empty shapely Polygon")
        if not (self.buffer_m >= 0 and math.isfinite(self.buffer_m)):
            raise ValueError(f"buffer_m must be finite and >= 0, got {self.buffer_m}")
        zones = tuple(self.zones)
        by_id: dict[str, NoFlyZone] = {}
        for zone in zones:
            if zone.zone_id in by_id:
                raise ValueError(f"duplicate no-fly zone id {zone.zone_id!r}")
            by_id[zone.zone_id] = zone
        object.__setattr__(self, "zones", zones)
        object.__setattr__(self, "_by_id", by_id)

    def zone(self, zone_id: str) -> NoFlyZone:
        """The zone with this id; KeyError when there is none."""
        return self._by_id[zone_id]

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self._by_id

    def with_zone(self, zone: NoFlyZone) -> Airspace:
        if zone.zone_id in self._by_id:
            raise ValueError(f"duplicate no-fly zone id {zone.zone_id!r}")
        return Airspace(self.area, (*self.zones, zone), self.buffer_m)

    def without_zone(self, zone_id: str) -> Airspace:
        if zone_id not in self._by_id:
            raise KeyError(zone_id)
        return Airspace(self.area, tuple(z for z in self.zones if z.zone_id != zone_id), self.buffer_m)

    def active_zones(
        self,
        at_s: float | None,
        floor_m: float = 0.0,
        ceiling_m: float = math.inf,
        *,
        until_s: float | None = None,
    ) -> tuple[NoFlyZone, ...]:
        """Zones in force at `at_s` (or at any time up to `until_s`) whose band meets [floor_m, ceiling_m]."""
        if until_s is None:
            return tuple(z for z in self.zones if z.is_active(at_s) and z.in_band(floor_m, ceiling_m))
        return tuple(
            z for z in self.zones if z.is_active_during(at_s, until_s) and z.in_band(floor_m, ceiling_m)
        )

    def flyable_area(self) -> shapely.Polygon | shapely.MultiPolygon:
        """The operating area shrunk by the buffer: where a drone's path may go."""
        return shrink(self.area, self.buffer_m)

    def zone_at(
        self, xy: tuple[float, float], alt_m: float, at_s: float | None, *, buffered: bool = True
    ) -> NoFlyZone | None:
        """The first zone in force at `at_s` containing the point at `alt_m`, or None if it is free.

        With `buffered` (the default, as the planner sees it) a point within the buffer of a zone
        counts as inside it.
        """
        point = shapely.Point(float(xy[0]), float(xy[1]))
        for zone in self.active_zones(at_s, alt_m, alt_m):
            shape = zone.buffered(self.buffer_m) if buffered else zone.shape
            # The boundary itself is flyable (the planner's free space is closed).
            if shape.contains_properly(point):
                return zone
        return None

    def fence(self, at_s: float | None = None, *, max_alt_m: float = math.inf) -> Fence:
        """The geofence to upload: the area as inclusion, zones in force at `at_s` below `max_alt_m`.

        Zones are exported unbuffered (the legal boundary); the planner keeps the buffer. Holes of
        the area become exclusion polygons; circles stay circles.
        """
        polygons: list[FloatArray] = [_ring(hole.coords) for hole in self.area.interiors]
        circles: list[tuple[float, float, float]] = []
        ids: list[str] = []
        for zone in self.active_zones(at_s, 0.0, max_alt_m):
            ids.append(zone.zone_id)
            if zone.circle is not None:
                circles.append(zone.circle)
            else:
                polygons.append(_ring(zone.shape.exterior.coords))
        return Fence(_ring(self.area.exterior.coords), tuple(polygons), tuple(circles), tuple(ids))
