"""Buffered zones merged into disjoint obstacles for the visibility graph, kept up to date per zone.

Overlapping zones are merged (union) into one obstacle per connected group: the graph then never
sees a vertex lying on another obstacle's edge, as identical or edge-sharing zones (adjacent
parcels) would otherwise produce, where a conservative freedom test would block every way out.

A group's shape is the union of its members' shapes in zone-id order, so the same set of zones
always gives bit-identical obstacles, whether reached by a full build or by updates: that is what
lets incremental updates reproduce a rebuild's graph exactly. Holes of a union (pockets enclosed
by several zones) are filled; a point in such a pocket has no route out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner._visibility import VisibilityGraph


def _groups(shapes: Mapping[str, shapely.Polygon], ids: Iterable[str]) -> list[list[str]]:
    """Connected groups (by intersection, touching included) of the given zones, ids sorted."""
    order = sorted(ids)
    if len(order) <= 1:
        return [order] if order else []
    polys = [shapes[z] for z in order]
    left, right = shapely.STRtree(polys).query(polys, predicate="intersects")
    n = len(order)
    adjacency = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, label = connected_components(adjacency, directed=False)
    groups: dict[int, list[str]] = {}
    for index, lab in enumerate(label.tolist()):
        groups.setdefault(lab, []).append(order[index])
    return list(groups.values())


def _group_parts(shapes: Mapping[str, shapely.Polygon], members: list[str]) -> list[shapely.Polygon]:
    if len(members) == 1:
        return [shapes[members[0]]]
    merged = shapely.union_all([shapes[z] for z in members])
    parts = merged.geoms if hasattr(merged, "geoms") else [merged]
    return [shapely.Polygon(p.exterior) for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty]


class ObstacleSet:
    """Zones (id -> buffered polygon) as merged obstacles of one visibility graph."""

    def __init__(
        self, free_area: shapely.Polygon | shapely.MultiPolygon, shapes: Mapping[str, shapely.Polygon]
    ) -> None:
        self._shapes: dict[str, shapely.Polygon] = dict(shapes)
        self._keys = itertools.count()
        self._group_of: dict[str, int] = {}
        self._members: dict[int, list[str]] = {}
        self._parts: dict[int, list[int]] = {}
        obstacles: list[tuple[int, shapely.Polygon]] = []
        for members in _groups(self._shapes, self._shapes):
            obstacles.extend(self._register(members))
        self.graph = VisibilityGraph(free_area, obstacles)
        self._refresh_lookup()

    def _register(self, members: list[str]) -> list[tuple[int, shapely.Polygon]]:
        group = next(self._keys)
        self._members[group] = members
        for zone_id in members:
            self._group_of[zone_id] = group
        out = [(next(self._keys), part) for part in _group_parts(self._shapes, members)]
        self._parts[group] = [key for key, _ in out]
        return out

    def _drop_group(self, group: int) -> list[str]:
        for key in self._parts.pop(group):
            self.graph.remove(key)
        members = self._members.pop(group)
        for zone_id in members:
            del self._group_of[zone_id]
        return members

    def _refresh_lookup(self) -> None:
        self._ids = sorted(self._shapes)
        self._polys = np.array([self._shapes[z] for z in self._ids], dtype=object)

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self._shapes

    def add(self, zone_id: str, shape: shapely.Polygon) -> None:
        if zone_id in self._shapes:
            raise ValueError(f"zone {zone_id!r} is already an obstacle")
        hits = shapely.intersects(self._polys, shape) if len(self._polys) else np.zeros(0, dtype=bool)
        touched = {self._group_of[self._ids[i]] for i in np.flatnonzero(hits)}
        self._shapes[zone_id] = shape
        members = [zone_id]
        for group in sorted(touched):
            members.extend(self._drop_group(group))
        for key, part in self._register(sorted(members)):
            self.graph.add(key, part)
        self._refresh_lookup()

    def remove(self, zone_id: str) -> None:
        group = self._group_of[zone_id]
        members = self._drop_group(group)
        del self._shapes[zone_id]
        for rest in _groups(self._shapes, [z for z in members if z != zone_id]):
            for key, part in self._register(rest):
                self.graph.add(key, part)
        self._refresh_lookup()

    def zones_at(self, xy: tuple[float, float]) -> list[str]:
        """Ids of the zones whose (buffered) interior holds the point."""
        if len(self._polys) == 0:
            return []
        inside = shapely.contains_properly(self._polys, shapely.Point(xy))
        return [self._ids[i] for i in np.flatnonzero(inside)]
