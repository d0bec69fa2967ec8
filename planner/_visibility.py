"""A reduced visibility graph over polygonal obstacles inside a flyable area, updated incrementally.

Nodes are the convex vertices of the obstacles and the reflex vertices of the area boundary: a
shortest path only bends there. An edge joins two nodes when the segment between them is free and
tangent to the obstacle at both ends (both ring neighbours of each end lie on one side of the
line); a shortest path never uses any other segment, which prunes the candidate pairs about
twentyfold before the (costly) freedom test.

Invariant kept by every operation (and what a full build establishes):

* a node is *enabled* when it is convex, inside the flyable area and not inside or on another obstacle;
* `pairs` holds every mutually tangent pair of enabled nodes, `visible` marks the free ones.

Every blocked pair records one *witness*, an obstacle that blocks it. Adding an obstacle disables
the nodes it covers, blocks (and is witness of) the visible pairs it touches, and tests its own
nodes' pairs; removing one re-tests only the pairs it witnessed (the others stay blocked by
theirs) and the nodes it covered. Both use the same freedom predicate as the full build, so the
graph equals the one a rebuild would give.

Freedom: a pair segment is blocked by any obstacle it touches other than its endpoints' own
obstacles (touching without entering is conservative but loses nothing: the shortest path then
bends at the touched vertex, which is a node joined by the same tangent line), and by its own
obstacle only when it enters its interior (possible for non-convex obstacles only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_INTERIORS_MEET = "T********"
# A vertex whose turn is this small relative to its edges is treated as straight and dropped.
_COLLINEAR_REL = 1e-12
# csgraph treats explicit zeros specially; a start on a node is joined with this weight instead.
_TINY_M = 1e-12
# Witness of a pair that is free, and of one that leaves a non-convex flyable area.
_FREE = -1
_AREA = -(2**62)
# Reach of the rings around both ends a candidate segment is tested in, nearest first: most are
# blocked within a few obstacle spacings, and short parts make cheap tree queries.
_STAGES_M = (60.0, 150.0, 350.0)


@dataclass
class _Obstacle:
    key: int
    polygon: shapely.Polygon
    slots: IntArray
    convex: bool


def _clean_ring(coords: FloatArray, ccw: bool) -> FloatArray:
    """Ring vertices (no closing repeat) in the wanted orientation, without repeats or straight vertices."""
    ring = np.asarray(coords, dtype=np.float64)[:, :2]
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    area2 = float(np.sum(ring[:, 0] * np.roll(ring[:, 1], -1) - np.roll(ring[:, 0], -1) * ring[:, 1]))
    if (area2 > 0) != ccw:
        ring = ring[::-1]
    while len(ring) >= 3:
        prev = np.roll(ring, 1, axis=0)
        nxt = np.roll(ring, -1, axis=0)
        e1 = ring - prev
        e2 = nxt - ring
        cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        scale = np.hypot(e1[:, 0], e1[:, 1]) * np.hypot(e2[:, 0], e2[:, 1])
        bad = (np.abs(cross) <= _COLLINEAR_REL * scale) | (scale == 0)
        if not bad.any():
            break
        # Drop one of each run of bad vertices per pass so a removal never hides a neighbour's turn.
        first = np.flatnonzero(bad)
        keep = np.ones(len(ring), dtype=bool)
        keep[first[np.concatenate([[True], np.diff(first) > 1])]] = False
        ring = ring[keep]
    return ring.copy()


def _turns(ring: FloatArray) -> FloatArray:
    prev = np.roll(ring, 1, axis=0)
    nxt = np.roll(ring, -1, axis=0)
    e1 = ring - prev
    e2 = nxt - ring
    return np.asarray(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0], dtype=np.float64)


class VisibilityGraph:
    """Obstacles (keyed by int) inside a flyable area; shortest obstacle-avoiding paths between points."""

    def __init__(
        self,
        free_area: shapely.Polygon | shapely.MultiPolygon,
        obstacles: Iterable[tuple[int, shapely.Polygon]],
    ) -> None:
        self._area = free_area
        shapely.prepare(self._area)
        hull_area = float(shapely.convex_hull(free_area).area)
        # Inside a convex area any segment between two inside points stays inside.
        self._area_convex = (
            isinstance(free_area, shapely.Polygon)
            and not free_area.interiors
            and (free_area.area >= hull_area * (1 - 1e-12))
        )
        cap = 64
        self._xy = np.zeros((cap, 2))
        self._prev = np.zeros((cap, 2))
        self._next = np.zeros((cap, 2))
        self._owner = np.full(cap, -1, dtype=np.int64)
        self._node = np.zeros(cap, dtype=bool)
        self._enabled = np.zeros(cap, dtype=bool)
        self._n = 0
        self._obstacles: dict[int, _Obstacle] = {}
        self._pi = np.zeros(0, dtype=np.int64)
        self._pj = np.zeros(0, dtype=np.int64)
        self._pvis = np.zeros(0, dtype=bool)
        self._pwit = np.zeros(0, dtype=np.int64)
        self._csr: csr_matrix | None = None

        # The area's outer rings: reflex vertices (seen from inside) are nodes; the ring itself is
        # enforced by the covered-by test, so it is no STRtree obstacle.
        parts = list(free_area.geoms) if isinstance(free_area, shapely.MultiPolygon) else [free_area]
        hole_key = -1
        fixed: list[tuple[int, shapely.Polygon]] = []
        for part_no, part in enumerate(parts):
            if part.is_empty:
                continue
            ring = _clean_ring(np.asarray(part.exterior.coords), ccw=True)
            self._append_ring(ring, owner=-(10**9) - part_no, node=_turns(ring) < 0)
            for hole in part.interiors:
                hole_key -= 1
                fixed.append((hole_key, shapely.Polygon(hole)))
        for key, polygon in [*fixed, *obstacles]:
            self._add_obstacle_vertices(key, polygon)
        self._rebuild_tree()
        alive = np.flatnonzero(self._node[: self._n])
        self._enabled[alive] = self._enable_test(alive)
        nodes = np.flatnonzero(self._enabled[: self._n])
        pi, pj = self._tangent_pairs(nodes, nodes, upper=True)
        self._pi, self._pj = pi, pj
        self._pwit = self._witness(pi, pj)
        self._pvis = self._pwit == _FREE
        self._build_csr()

    # ----------------------------------------------------------------- storage

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        cap = len(self._xy)
        if need <= cap:
            return
        cap = max(cap, 64)
        while cap < need:
            cap *= 2
        grow = cap - len(self._xy)
        self._xy = np.concatenate([self._xy, np.zeros((grow, 2))])
        self._prev = np.concatenate([self._prev, np.zeros((grow, 2))])
        self._next = np.concatenate([self._next, np.zeros((grow, 2))])
        self._owner = np.concatenate([self._owner, np.full(grow, -1, dtype=np.int64)])
        self._node = np.concatenate([self._node, np.zeros(grow, dtype=bool)])
        self._enabled = np.concatenate([self._enabled, np.zeros(grow, dtype=bool)])

    def _append_ring(self, ring: FloatArray, owner: int, node: BoolArray) -> IntArray:
        count = len(ring)
        self._reserve(count)
        slots = np.arange(self._n, self._n + count, dtype=np.int64)
        self._xy[slots] = ring
        self._prev[slots] = np.roll(ring, 1, axis=0)
        self._next[slots] = np.roll(ring, -1, axis=0)
        self._owner[slots] = owner
        self._node[slots] = node
        self._enabled[slots] = False
        self._n += count
        return slots

    def _add_obstacle_vertices(self, key: int, polygon: shapely.Polygon) -> _Obstacle:
        ring = _clean_ring(np.asarray(polygon.exterior.coords), ccw=True)
        if len(ring) < 3:
            raise ValueError(f"obstacle {key} degenerates to fewer than three vertices")
        turns = _turns(ring)
        convex_vertex = turns > 0
        clean = shapely.Polygon(ring)
        shapely.prepare(clean)
        slots = self._append_ring(ring, owner=key, node=convex_vertex)
        obstacle = _Obstacle(key, clean, slots, bool(convex_vertex.all()))
        self._obstacles[key] = obstacle
        return obstacle

    def _rebuild_tree(self) -> None:
        obstacles = list(self._obstacles.values())
        self._tree = shapely.STRtree([o.polygon for o in obstacles])
        self._tree_polys = np.array([o.polygon for o in obstacles], dtype=object)
        self._tree_keys = np.array([o.key for o in obstacles], dtype=np.int64)
        self._tree_convex = np.array([o.convex for o in obstacles], dtype=bool)
        self._tree_order = np.argsort(self._tree_keys, kind="stable")
        self._tree_keys_sorted = self._tree_keys[self._tree_order]

    # ----------------------------------------------------------------- predicates

    def _enable_test(self, slots: IntArray) -> BoolArray:
        """Which of these convex vertices are usable: inside the area, clear of other obstacles."""
        ok = np.asarray(self._node[slots], dtype=bool).copy()
        if len(slots) == 0:
            return ok
        points = shapely.points(self._xy[slots])
        ok &= shapely.covers(self._area, points)
        hit_p, hit_t = self._tree.query(points, predicate="intersects")
        other = self._tree_keys[hit_t] != self._owner[slots][hit_p]
        ok[hit_p[other]] = False
        return ok

    def _tangent_mask(self, at: IntArray, toward: FloatArray) -> BoolArray:
        """mask[a, b]: the line from node at[a] toward point toward[b] is tangent at at[a]."""
        origin = self._xy[at][:, None, :]
        d = toward[None, :, :] - origin
        e1 = self._prev[at][:, None, :] - origin
        e2 = self._next[at][:, None, :] - origin
        s1 = d[..., 0] * e1[..., 1] - d[..., 1] * e1[..., 0]
        s2 = d[..., 0] * e2[..., 1] - d[..., 1] * e2[..., 0]
        return np.asarray(s1 * s2 >= 0, dtype=bool)

    def _tangent_pairs(self, a: IntArray, b: IntArray, upper: bool) -> tuple[IntArray, IntArray]:
        """Mutually tangent pairs between node sets a and b (upper: a is b, keep i<j once)."""
        if len(a) == 0 or len(b) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        out_i: list[IntArray] = []
        out_j: list[IntArray] = []
        # Chunks bound the temporary (rows x len(b)) matrices to a few MB.
        step = max(1, 400_000 // max(len(b), 1))
        xy_b = self._xy[b]
        for lo in range(0, len(a), step):
            rows = a[lo : lo + step]
            mask = self._tangent_mask(rows, xy_b)
            mask &= self._tangent_mask(b, self._xy[rows]).T
            same = (self._xy[rows][:, None, 0] == xy_b[None, :, 0]) & (
                self._xy[rows][:, None, 1] == xy_b[None, :, 1]
            )
            mask &= ~same
            if upper:
                mask &= rows[:, None] < b[None, :]
            r, c = np.nonzero(mask)
            out_i.append(rows[r])
            out_j.append(b[c])
        return np.concatenate(out_i), np.concatenate(out_j)

    def _segments(self, a: FloatArray, b: FloatArray) -> npt.NDArray[np.object_]:
        return np.asarray(shapely.linestrings(np.stack([a, b], axis=1)), dtype=object)

    def _witness(self, pi: IntArray, pj: IntArray) -> IntArray:
        """The graph freedom predicate for node pairs (see the module docstring).

        Returns, per pair, _FREE or the key of one obstacle blocking it: removing an obstacle
        then re-tests only the pairs it witnessed (the others stay blocked by their witness).
        """
        return self._scan(self._xy[pi], self._xy[pj], self._owner[pi], self._owner[pj])

    def _scan(self, a: FloatArray, b: FloatArray, own_a: IntArray, own_b: IntArray) -> IntArray:
        """Witness per segment a->b whose ends lie on obstacles own_a / own_b (-1: on none).

        Most candidate segments are blocked close to an end, so the parts near the ends are tested
        first (their small boxes make the tree query cheap) and only survivors' further parts
        after. The parts' union is the segment, so the outcome is that of testing it whole.
        """
        count = len(a)
        witness = np.full(count, _FREE, dtype=np.int64)
        if count == 0:
            return witness
        if not self._area_convex:
            outside = ~np.asarray(shapely.covered_by(self._segments(a, b), self._area), dtype=bool)
            witness[outside] = _AREA
        length = np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1])
        unit = (b - a) / np.maximum(length, _TINY_M)[:, None]
        half = length / 2
        inner = 0.0
        # Rings of growing reach around both ends, then whatever middle is left.
        for outer in (*_STAGES_M, math.inf):
            todo = np.flatnonzero((witness == _FREE) & (half > inner))
            if len(todo) == 0:
                break
            near = inner * unit[todo]
            far = np.minimum(outer, half[todo])[:, None] * unit[todo]
            seg = np.concatenate([todo, todo])
            starts = np.concatenate([a[todo] + near, b[todo] - far])
            ends = np.concatenate([a[todo] + far, b[todo] - near])
            self._block_by_others(witness, seg, starts, ends, own_a, own_b)
            inner = outer
        # Own obstacles block only by entering them, which needs a non-convex obstacle.
        alive = np.flatnonzero(witness == _FREE)
        if len(alive) == 0 or len(self._tree_keys) == 0:
            return witness
        own_keys = np.concatenate([own_a[alive], own_b[alive]])
        which = np.concatenate([alive, alive])
        tree_idx = np.searchsorted(self._tree_keys_sorted, own_keys)
        tree_idx = np.minimum(tree_idx, len(self._tree_keys_sorted) - 1)
        known = self._tree_keys_sorted[tree_idx] == own_keys
        poly_idx = self._tree_order[tree_idx]
        check = known & ~self._tree_convex[poly_idx]
        if check.any():
            idx = which[check]
            lines = self._segments(a[idx], b[idx])
            enters = np.asarray(
                shapely.relate_pattern(lines, self._tree_polys[poly_idx[check]], _INTERIORS_MEET), dtype=bool
            )
            witness[idx[enters]] = own_keys[check][enters]
        return witness

    def _block_by_others(
        self,
        witness: IntArray,
        seg: IntArray,
        starts: FloatArray,
        ends: FloatArray,
        own_a: IntArray,
        own_b: IntArray,
    ) -> None:
        """Mark segments `seg` (given by parts starts->ends) blocked by any obstacle but their own."""
        if len(seg) == 0:
            return
        hit_l, hit_t = self._tree.query(self._segments(starts, ends), predicate="intersects")
        keys = self._tree_keys[hit_t]
        owner = seg[hit_l]
        other = (keys != own_a[owner]) & (keys != own_b[owner])
        witness[owner[other]] = keys[other]

    def _free_exact(self, a: FloatArray, b: FloatArray) -> BoolArray:
        """Exact freedom of arbitrary segments (for query points, which may lie on a boundary)."""
        free = np.ones(len(a), dtype=bool)
        if len(a) == 0:
            return free
        lines = self._segments(a, b)
        if not self._area_convex:
            free &= shapely.covered_by(lines, self._area)
        hit_l, hit_t = self._tree.query(lines, predicate="intersects")
        if len(hit_l):
            enters = shapely.relate_pattern(lines[hit_l], self._tree_polys[hit_t], _INTERIORS_MEET)
            free[hit_l[enters]] = False
        return free

    def _build_csr(self) -> None:
        vis = self._pvis
        i, j = self._pi[vis], self._pj[vis]
        w = np.hypot(*(self._xy[i] - self._xy[j]).T)
        n = self._n
        self._csr = csr_matrix((w, (i, j)), shape=(n, n))
        self._csr.sum_duplicates()

    # ----------------------------------------------------------------- updates

    @property
    def edge_count(self) -> int:
        return int(self._pvis.sum())

    @property
    def node_count(self) -> int:
        return int(self._enabled[: self._n].sum())

    def add(self, key: int, polygon: shapely.Polygon) -> None:
        """Add an obstacle, touching only the nodes and pairs it affects."""
        if key in self._obstacles:
            raise ValueError(f"obstacle {key} is already present")
        obstacle = self._add_obstacle_vertices(key, polygon)
        self._rebuild_tree()
        poly = obstacle.polygon
        # Existing nodes it covers (closed) are disabled with their pairs.
        enabled = np.flatnonzero(self._enabled[: self._n])
        if len(enabled):
            covered = shapely.intersects(poly, shapely.points(self._xy[enabled]))
            gone = enabled[covered]
            if len(gone):
                self._enabled[gone] = False
                keep = ~(np.isin(self._pi, gone) | np.isin(self._pj, gone))
                self._keep_pairs(keep)
        # Visible pairs whose segment touches it become blocked (it is nobody's own obstacle).
        cand = self._touching(poly, np.flatnonzero(self._pvis))
        self._pvis[cand] = False
        self._pwit[cand] = key
        # The new nodes' pairs.
        new = obstacle.slots[self._node[obstacle.slots]]
        self._enabled[new] = self._enable_test(new)
        self._connect(new[self._enabled[new]])
        self._build_csr()

    def remove(self, key: int) -> None:
        """Remove an obstacle, re-testing only the pairs and nodes it blocked."""
        obstacle = self._obstacles.pop(key)
        slots = obstacle.slots
        poly = obstacle.polygon
        self._keep_pairs(~((self._owner[self._pi] == key) | (self._owner[self._pj] == key)))
        self._enabled[slots] = False
        self._node[slots] = False
        self._owner[slots] = -1
        self._rebuild_tree()
        # Pairs it blocked and nothing else is known to block.
        cand = np.flatnonzero(self._pwit == key)
        if len(cand):
            self._pwit[cand] = self._witness(self._pi[cand], self._pj[cand])
            self._pvis[cand] = self._pwit[cand] == _FREE
        # Nodes it covered may come back.
        dormant = np.flatnonzero(self._node[: self._n] & ~self._enabled[: self._n])
        if len(dormant):
            dormant = dormant[shapely.intersects(poly, shapely.points(self._xy[dormant]))]
            back = dormant[self._enable_test(dormant)]
            self._enabled[back] = True
            self._connect(back)
        self._compact()
        self._build_csr()

    def _compact(self) -> None:
        """Drop dead vertex slots once they outnumber the live ones, so churn cannot grow the graph."""
        live = self._owner[: self._n] != -1
        dead = self._n - int(live.sum())
        if dead <= max(1024, self._n - dead):
            return
        keep = np.flatnonzero(live)
        new_id = np.cumsum(live) - 1
        self._xy, self._prev, self._next = self._xy[keep], self._prev[keep], self._next[keep]
        self._owner, self._node, self._enabled = self._owner[keep], self._node[keep], self._enabled[keep]
        self._n = len(keep)
        self._pi, self._pj = new_id[self._pi], new_id[self._pj]
        for obstacle in self._obstacles.values():
            obstacle.slots = new_id[obstacle.slots]

    def _keep_pairs(self, keep: BoolArray) -> None:
        self._pi, self._pj = self._pi[keep], self._pj[keep]
        self._pvis, self._pwit = self._pvis[keep], self._pwit[keep]

    def _touching(self, poly: shapely.Polygon, pair_idx: IntArray) -> IntArray:
        """Those of the given pairs whose segment intersects `poly` (bounding boxes first)."""
        if len(pair_idx) == 0:
            return pair_idx
        a = self._xy[self._pi[pair_idx]]
        b = self._xy[self._pj[pair_idx]]
        x0, y0, x1, y1 = poly.bounds
        near = (
            (np.minimum(a[:, 0], b[:, 0]) <= x1)
            & (np.maximum(a[:, 0], b[:, 0]) >= x0)
            & (np.minimum(a[:, 1], b[:, 1]) <= y1)
            & (np.maximum(a[:, 1], b[:, 1]) >= y0)
        )
        idx: IntArray = pair_idx[near]
        if len(idx) == 0:
            return idx
        lines = self._segments(a[near], b[near])
        hit: IntArray = idx[np.asarray(shapely.intersects(poly, lines), dtype=bool)]
        return hit

    def _connect(self, new: IntArray) -> None:
        """Add the tangent pairs of freshly enabled nodes `new` with every enabled node."""
        if len(new) == 0:
            return
        old = np.setdiff1d(np.flatnonzero(self._enabled[: self._n]), new)
        i1, j1 = self._tangent_pairs(new, old, upper=False)
        i2, j2 = self._tangent_pairs(new, new, upper=True)
        pi = np.concatenate([i1, i2])
        pj = np.concatenate([j1, j2])
        self._pi = np.concatenate([self._pi, pi])
        self._pj = np.concatenate([self._pj, pj])
        witness = self._witness(pi, pj)
        self._pwit = np.concatenate([self._pwit, witness])
        self._pvis = np.concatenate([self._pvis, witness == _FREE])

    # ----------------------------------------------------------------- queries

    def edges(self) -> tuple[FloatArray, FloatArray]:
        """Endpoints of the graph's edges, for drawing and tests."""
        vis = self._pvis
        return self._xy[self._pi[vis]].copy(), self._xy[self._pj[vis]].copy()

    def obstacle_keys_at(self, xy: tuple[float, float]) -> list[int]:
        """Keys of the obstacles whose interior contains the point."""
        point = shapely.Point(xy)
        hits = self._tree.query(point, predicate="within")
        return [int(k) for k in self._tree_keys[hits]]

    def in_area(self, xy: tuple[float, float]) -> bool:
        return bool(self._area.covers(shapely.Point(xy)))

    def _hooks(self, p: FloatArray) -> tuple[IntArray, FloatArray]:
        """Enabled nodes visible from point p along a line tangent at the node, with distances."""
        nodes = np.flatnonzero(self._enabled[: self._n])
        if len(nodes) == 0:
            return nodes, np.zeros(0)
        tangent = self._tangent_mask(nodes, p[None, :])[:, 0]
        nodes = nodes[tangent]
        dist = np.hypot(*(self._xy[nodes] - p).T)
        at_node = dist == 0
        free = np.ones(len(nodes), dtype=bool)
        away = np.flatnonzero(~at_node)
        starts = np.broadcast_to(p, (len(away), 2))
        if len(self._tree.query(shapely.Point(p), predicate="intersects")):
            # On an obstacle's boundary: the conservative test would block every way off it.
            free[away] = self._free_exact(starts, self._xy[nodes[away]])
        else:
            no_owner = np.full(len(away), -1, dtype=np.int64)
            free[away] = (
                self._scan(starts, self._xy[nodes[away]], no_owner, self._owner[nodes[away]]) == _FREE
            )
        return nodes[free], np.maximum(dist[free], _TINY_M)

    def shortest_path(self, start: tuple[float, float], goal: tuple[float, float]) -> FloatArray | None:
        """Vertices of a shortest free path (start and goal included), or None when none exists.

        The caller has checked that both points are free.
        """
        s = np.array(start, dtype=np.float64)
        g = np.array(goal, dtype=np.float64)
        if np.array_equal(s, g) or self._free_exact(s[None, :], g[None, :])[0]:
            return np.array([s, g])
        s_nodes, s_w = self._hooks(s)
        if len(s_nodes) == 0:
            return None
        g_nodes, g_w = self._hooks(g)
        if len(g_nodes) == 0:
            return None
        base = self._csr
        assert base is not None
        n = self._n
        # Start and goal become two extra rows; the search is undirected so row entries suffice.
        indptr = np.concatenate(
            [base.indptr, [base.nnz + len(s_nodes), base.nnz + len(s_nodes) + len(g_nodes)]]
        )
        indices = np.concatenate([base.indices, s_nodes, g_nodes])
        data = np.concatenate([base.data, s_w, g_w])
        graph = csr_matrix((data, indices, indptr), shape=(n + 2, n + 2))
        dist, pred = dijkstra(graph, directed=False, indices=n, return_predecessors=True)
        if not np.isfinite(dist[n + 1]):
            return None
        order = [n + 1]
        while order[-1] != n:
            order.append(int(pred[order[-1]]))
        order.reverse()
        inner = np.array(order[1:-1], dtype=np.int64)
        return np.vstack([s[None, :], self._xy[inner], g[None, :]])
