"""Drop points from OSM: doorsteps at addresses, parcel lockers, landing spots in parks."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Point, Polygon
from shapely.ops import nearest_points

from planner._osm_read import OsmData, slug
from planner.geo import FloatArray, LatLon, LocalFrame
from planner.site import Depot, DropKind, DropPoint


@dataclass(frozen=True)
class Surroundings:
    """What deciding about a drop point needs: where robots drive and where drones may go.

    `flyable` is the operating area shrunk by `zone_clearance_m`, minus every zone grown by it,
    reduced to its largest connected piece: a point outside it is too near a zone or the area's
    edge, or sits in a pocket that zones wall off from the depots.
    """

    frame: LocalFrame
    area: Polygon
    network: shapely.MultiLineString
    vertices: FloatArray
    flyable: Polygon
    robot_reach_m: float
    ground_alt_amsl_m: float
    decimals: int

    @classmethod
    def build(
        cls,
        frame: LocalFrame,
        area: Polygon,
        lines: Sequence[FloatArray],
        zone_shapes: Sequence[Polygon],
        *,
        robot_reach_m: float,
        zone_clearance_m: float,
        ground_alt_amsl_m: float,
        decimals: int,
    ) -> Surroundings:
        clear = area.buffer(-zone_clearance_m)
        if zone_shapes:
            clear = clear.difference(shapely.unary_union(list(zone_shapes)).buffer(zone_clearance_m))
        pieces = [g for g in getattr(clear, "geoms", [clear]) if isinstance(g, Polygon) and not g.is_empty]
        flyable = max(pieces, key=lambda g: g.area) if pieces else Polygon()
        return cls(
            frame,
            area,
            shapely.MultiLineString([ln.tolist() for ln in lines]),
            np.concatenate(list(lines)),
            flyable,
            robot_reach_m,
            ground_alt_amsl_m,
            decimals,
        )

    def node_distance_m(self, xy: FloatArray) -> FloatArray:
        dist, _ = cKDTree(self.vertices).query(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
        return np.asarray(dist, dtype=np.float64)

    def can_fly_to(self, x_m: float, y_m: float, margin_m: float = 0.0) -> bool:
        """Whether a drone can reach (x, y) from the depots, with `margin_m` to spare."""
        point = Point(x_m, y_m)
        return bool(self.flyable.contains(point)) and self.flyable.exterior.distance(point) >= margin_m

    def drop(self, name: str, kind: DropKind, xy: tuple[float, float], address: str) -> DropPoint:
        """A drop point at `xy`, rounded as it will be written; who can serve it is decided here."""
        lat, lon = self.frame.to_wgs84(*xy)
        lat, lon = round(lat, self.decimals), round(lon, self.decimals)
        x, y = self.frame.to_local(lat, lon)
        drone_ok = self.can_fly_to(x, y)
        # Robots snap onto graph nodes, so reach is measured to the nearest vertex, not the line.
        robot_ok = bool(self.node_distance_m(np.array([x, y]))[0] <= self.robot_reach_m)
        position = LatLon(lat, lon, self.ground_alt_amsl_m)
        return DropPoint(name, kind, position, (x, y), address, drone_ok, robot_ok)


def _rank(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def doorsteps(
    data: OsmData, env: Surroundings, max_count: int, cell_m: float
) -> tuple[dict[str, DropPoint], dict[str, dict[str, Any]]]:
    """A spread-out, deterministic subset of the addresses, each at its building's street side."""
    inner = env.area.buffer(-2.0)
    cells: dict[tuple[int, int], list[tuple[str, DropPoint, str]]] = {}
    seen: set[str] = set()
    for addr in sorted(data.addresses, key=lambda a: (a.osm_id, a.label)):
        name = slug(addr.label)
        if name in seen:
            continue
        xy = env.frame.to_local(addr.lat_deg, addr.lon_deg)
        if addr.outline is not None:
            outline = Polygon(env.frame.points_to_local(addr.outline))
            if outline.is_valid and not outline.is_empty:
                xy = _street_side(outline, env.network)
        if not inner.contains(Point(xy)):
            continue
        drop = env.drop(name, "doorstep", xy, addr.full)
        if not (drop.drone_ok or drop.robot_ok):
            continue
        seen.add(name)
        cell = (int(xy[0] // cell_m), int(xy[1] // cell_m))
        cells.setdefault(cell, []).append((_rank(addr.label), drop, addr.osm_id))
    for group in cells.values():
        group.sort(key=lambda t: t[0])
    chosen: dict[str, DropPoint] = {}
    props: dict[str, dict[str, Any]] = {}
    depth = 0
    # Round-robin over the cells: the subset covers the whole area before any cell gets a second.
    while len(chosen) < max_count and any(len(g) > depth for g in cells.values()):
        for cell in sorted(cells):
            group = cells[cell]
            if depth < len(group) and len(chosen) < max_count:
                _rank_key, drop, osm_id = group[depth]
                chosen[drop.name] = drop
                props[drop.name] = {"osm_id": osm_id}
        depth += 1
    return dict(sorted(chosen.items())), props


def _street_side(outline: Polygon, network: shapely.MultiLineString) -> tuple[float, float]:
    """The point of a building's wall nearest the network, stepped up to 1.5 m out towards it."""
    on_wall, on_walk = nearest_points(outline.exterior, network)
    dx, dy = on_walk.x - on_wall.x, on_walk.y - on_wall.y
    dist = math.hypot(dx, dy)
    if dist < 1e-6:
        return float(on_wall.x), float(on_wall.y)
    step = min(1.5, dist / 2)
    return float(on_wall.x + dx / dist * step), float(on_wall.y + dy / dist * step)


def lockers(data: OsmData, env: Surroundings, depots: Mapping[str, Depot], per_depot: int) -> list[DropPoint]:
    """Parcel lockers found in the data, plus lockers on the network a few hundred metres from each depot."""
    out: list[DropPoint] = []
    inner = env.area.buffer(-20.0)
    for i, found in enumerate(sorted(data.lockers, key=lambda p: p.osm_id)):
        xy = env.frame.to_local(found.lat_deg, found.lon_deg)
        if inner.contains(Point(xy)):
            out.append(env.drop(slug(f"locker-{found.label or i + 1}"), "locker", xy, found.full))
    verts = env.vertices
    clear = np.array([env.can_fly_to(x, y, margin_m=5.0) for x, y in verts])
    usable = verts[clear & shapely.contains_xy(inner, verts[:, 0], verts[:, 1])]
    for depot in depots.values():
        dist = np.hypot(*(usable - np.asarray(depot.xy_m)).T)
        ring = usable[(dist > 150.0) & (dist < 600.0)]
        if not len(ring):
            continue
        ring_dist = np.hypot(*(ring - np.asarray(depot.xy_m)).T)
        picked = [int(np.argmin(np.abs(ring_dist - 350.0)))]
        # Farthest-point sampling: each next locker as far as possible from the ones placed.
        while len(picked) < min(per_depot, len(ring)):
            gap = np.min([np.hypot(*(ring - ring[j]).T) for j in picked], axis=0)
            picked.append(int(np.argmax(gap)))
        for k, j in enumerate(picked):
            xy = (float(ring[j, 0]), float(ring[j, 1]))
            out.append(
                env.drop(
                    f"locker-{depot.name}-{k + 1}", "locker", xy, f"parcel locker near depot {depot.name}"
                )
            )
    return out


def landing_spots(data: OsmData, env: Surroundings, max_count: int) -> list[DropPoint]:
    """Open green spaces clear of zones, biggest first: a drone can set a parcel down there."""
    inner = env.area.buffer(-20.0)
    found: list[tuple[float, str, tuple[float, float], str]] = []
    for park in data.parks:
        if park.outline is None:
            continue
        poly = Polygon(env.frame.points_to_local(park.outline))
        if not poly.is_valid or poly.area < 400.0:
            continue
        core = poly.buffer(-5.0)
        p = (core if not core.is_empty else poly).representative_point()
        if inner.contains(p) and env.can_fly_to(p.x, p.y, margin_m=10.0):
            found.append((-poly.area, park.label, (float(p.x), float(p.y)), park.osm_id))
    found.sort(key=lambda t: (t[0], t[3]))
    spots: dict[str, DropPoint] = {}
    for _area, label, xy, _osm_id in found:
        name = slug(f"spot-{label}") if label else f"spot-park-{len(spots) + 1}"
        if name not in spots and len(spots) < max_count:
            spots[name] = env.drop(name, "landing_spot", xy, label or "park")
    return list(spots.values())
