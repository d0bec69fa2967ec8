"""Robot routes on the sidewalk graph, with closures.

The graph is built from sidewalk polylines in local metres (`SidewalkGraph.from_lines`) or from
node/edge arrays (`SidewalkGraph.from_arrays`). Every polyline vertex is a node and every segment
an undirected edge weighted by its Euclidean length. Vertices closer than `snap_m` are merged,
so lines that share a junction vertex (as OSM footways do) or end a hair apart are joined. Lines
that merely cross are NOT joined by default: in OSM a footway crossing without a shared node is
a bridge or an underpass; pass `split_crossings=True` to node such drawings (hand-made maps).
Segments longer than `max_segment_m` get evenly spaced extra nodes so points snap close by.

A route snaps its start and goal to graph nodes and walks straight to them; `SidewalkRoute.length_m`
includes those two walks. The goal snaps to the nearest node *reachable* from the start's node
(same connected component of the open graph), and a walk longer than `max_walk_m` means NoRoute.
Shortest paths are exact (see `planner._graph` for the search, which runs in scipy's C Dijkstra:
about 5-7 ms per query on a 100k-node grid, `bench/sidewalk_bench.py`).

One depot to many drop points: `routes_from` / `lengths_from` give, for every target, what
`route` gives (same snapping, walks, closures; lengths equal to 1e-9 relative) from ONE
single-source Dijkstra over the open graph instead of one search per target.

Closures (`close_edges_near`, `close_edges_in`, `close_edges`, `close_nodes`, `reopen_*`) change
the graph in place; the search structure is rebuilt lazily on the next query. A graph is not
safe to mutate from two threads; use `copy()` for a private scratch graph.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from planner._graph import CsrGraph, FloatArray, IntArray, dedupe_edges
from planner.errors import NoRoute

DEFAULT_MAX_WALK_M = 50.0
DEFAULT_MAX_SEGMENT_M = 20.0
# First search radius as a fraction of the straight-line distance between the two end nodes.
# The exact search needs radius >= network distance / 2 to finish in one pass: too small a guess
# costs a repeat, too large a guess explores area that is not needed; results are exact either
# way. A street grid detours by 1.1-1.3x, OSM footways of central Helsinki by 1.3x (median) to
# 1.9x (90th percentile). After a few queries the graph learns its own detour ratio: the guess
# becomes the `_DETOUR_QUANTILE` of the last `_DETOUR_WINDOW` observed ratios (times 1/2).
DEFAULT_RADIUS_FACTOR = 0.65
_DETOUR_WINDOW = 64
_DETOUR_MIN_SAMPLES = 8
_DETOUR_QUANTILE = 90.0  # a repeat costs about as much as the first pass: aim high


@dataclass(frozen=True)
class Snap:
    """A point attached to the graph: the node it walks to and how far that walk is."""

    node_id: int
    node_xy: tuple[float, float]
    walk_m: float


@dataclass(frozen=True)
class NetworkPath:
    """A shortest path between two nodes."""

    length_m: float
    node_ids: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class SidewalkRoute:
    """A robot route: walk to the start node, follow the network, walk from the goal node.

    `points` (N, 2) starts at the start point and ends at the goal point (a walk of zero length
    adds no point); `length_m == walk_start_m + network_length_m + walk_goal_m`.
    """

    points: FloatArray
    length_m: float
    network_length_m: float
    walk_start_m: float
    walk_goal_m: float
    node_ids: tuple[int, ...]

    def duration_s(self, speed_m_s: float) -> float:
        if not speed_m_s > 0:
            raise ValueError(f"speed_m_s must be > 0, got {speed_m_s}")
        return self.length_m / speed_m_s


def _as_xy(point: ArrayLike, what: str) -> tuple[float, float]:
    arr = np.asarray(point, dtype=np.float64).reshape(-1)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be a finite (x_m, y_m) pair, got {point!r}")
    return float(arr[0]), float(arr[1])


class SidewalkGraph:
    """An undirected sidewalk network in local metres, with closures and exact routing."""

    def __init__(
        self,
        node_xy: FloatArray,
        edges: IntArray,
        lengths: FloatArray,
        *,
        max_walk_m: float = DEFAULT_MAX_WALK_M,
        radius_factor: float = DEFAULT_RADIUS_FACTOR,
    ) -> None:
        """Takes validated, deduplicated arrays; use `from_lines` or `from_arrays`."""
        if not max_walk_m >= 0:
            raise ValueError(f"max_walk_m must be >= 0, got {max_walk_m}")
        if not radius_factor > 0:
            raise ValueError(f"radius_factor must be > 0, got {radius_factor}")
        self._node_xy = node_xy
        self._edges = edges
        self._lengths = lengths
        for arr in (node_xy, edges, lengths):
            arr.setflags(write=False)
        self.max_walk_m = float(max_walk_m)
        self.radius_factor = float(radius_factor)
        self._edge_open = np.ones(len(edges), dtype=bool)
        self._node_open = np.ones(len(node_xy), dtype=bool)
        self._tree = cKDTree(node_xy) if len(node_xy) else None
        self._csr: CsrGraph | None = None
        self._segments: NDArray[Any] | None = None
        self._detours: deque[float] = deque(maxlen=_DETOUR_WINDOW)
        self._eligible_mask = np.zeros(0, dtype=bool)
        self._eligible_for: CsrGraph | None = None  # the search structure the mask belongs to

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def from_lines(
        cls,
        lines: Sequence[ArrayLike],
        snap_m: float = 0.5,
        *,
        split_crossings: bool = False,
        max_segment_m: float | None = DEFAULT_MAX_SEGMENT_M,
        max_walk_m: float = DEFAULT_MAX_WALK_M,
    ) -> SidewalkGraph:
        """Build from polylines ((M, 2) arrays of local metres, M >= 2).

        Merging is leader clustering, not transitive: a vertex joins the first earlier vertex
        within `snap_m` that leads a cluster, so a densely sampled line does not collapse into
        one node by chaining. A merged node sits at the mean of its vertices.

        Points snap to nodes, so a long straight segment (OSM draws a 150 m sidewalk as two
        vertices) would leave a doorstep halfway along it 75 m from the network. Segments longer
        than `max_segment_m` are therefore split evenly with extra nodes (None: never). Those
        nodes are never merged with anything, so densifying cannot invent junctions.
        """
        if not snap_m >= 0:
            raise ValueError(f"snap_m must be >= 0, got {snap_m}")
        if max_segment_m is not None and not max_segment_m > 0:
            raise ValueError(f"max_segment_m must be > 0, got {max_segment_m}")
        arrays: list[FloatArray] = []
        for i, line in enumerate(lines):
            arr = np.asarray(line, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
                raise ValueError(f"line {i} must be an (M >= 2, 2) array, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"line {i} has non-finite coordinates")
            arrays.append(arr)
        if split_crossings and arrays:
            noded = shapely.node(shapely.multilinestrings([shapely.linestrings(a) for a in arrays]))
            arrays = [
                np.asarray(shapely.get_coordinates(p), dtype=np.float64) for p in shapely.get_parts(noded)
            ]
        if not arrays:
            return cls(np.empty((0, 2)), np.empty((0, 2), dtype=np.int64), np.empty(0), max_walk_m=max_walk_m)
        verts = np.concatenate(arrays)
        label, node_xy = _cluster(verts, snap_m)
        seg_mask = np.ones(len(verts) - 1, dtype=bool)
        ends = np.cumsum([len(a) for a in arrays])[:-1]
        seg_mask[ends - 1] = False  # no segment from one line's last vertex to the next line's first
        first = np.flatnonzero(seg_mask)
        raw = np.stack([label[first], label[first + 1]], axis=1)
        lengths = np.hypot(*(node_xy[raw[:, 0]] - node_xy[raw[:, 1]]).T)
        edges, lengths = dedupe_edges(raw, lengths)
        if max_segment_m is not None:
            node_xy, edges = _densify(node_xy, edges, lengths, max_segment_m)
            lengths = np.hypot(*(node_xy[edges[:, 0]] - node_xy[edges[:, 1]]).T).astype(np.float64)
        return cls(node_xy, edges, lengths, max_walk_m=max_walk_m)

    @classmethod
    def from_arrays(
        cls,
        node_xy: ArrayLike,
        edges: ArrayLike,
        lengths: ArrayLike | None = None,
        *,
        max_walk_m: float = DEFAULT_MAX_WALK_M,
    ) -> SidewalkGraph:
        """Build from node coordinates (N, 2), undirected edges (E, 2) of node ids, lengths (E,).

        Lengths default to the Euclidean distance between the end nodes; given lengths must be
        finite and >= 0. Self-loops are dropped and parallel edges keep the shortest, so edge
        ids refer to `graph.edges` after that clean-up.
        """
        xy = np.array(node_xy, dtype=np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(xy)):
            raise ValueError("node_xy has non-finite coordinates")
        e = np.array(edges, dtype=np.int64).reshape(-1, 2)
        if e.size and (e.min() < 0 or e.max() >= len(xy)):
            raise ValueError(f"edge node ids must be in [0, {len(xy)})")
        if lengths is None:
            w = np.hypot(*(xy[e[:, 0]] - xy[e[:, 1]]).T).astype(np.float64)
        else:
            w = np.array(lengths, dtype=np.float64).reshape(-1)
            if w.shape != (len(e),):
                raise ValueError(f"lengths must have one value per edge ({len(e)}), got {w.shape}")
            if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
                raise ValueError("lengths must be finite and >= 0")
        e, w = dedupe_edges(e, w)
        return cls(xy, e, w, max_walk_m=max_walk_m)

    def copy(self) -> SidewalkGraph:
        """A graph sharing the (read-only) geometry, with its own closures."""
        other = SidewalkGraph.__new__(SidewalkGraph)
        other.__dict__.update(self.__dict__)
        other._edge_open = self._edge_open.copy()
        other._node_open = self._node_open.copy()
        other._detours = self._detours.copy()
        return other

    # ---- inspection -----------------------------------------------------------------------

    @property
    def node_xy(self) -> FloatArray:
        return self._node_xy

    @property
    def edges(self) -> IntArray:
        return self._edges

    @property
    def lengths(self) -> FloatArray:
        return self._lengths

    @property
    def n_nodes(self) -> int:
        return len(self._node_xy)

    @property
    def n_edges(self) -> int:
        return len(self._edges)

    @property
    def closed_edges(self) -> IntArray:
        """Edges closed directly (closing a node also blocks its edges but does not list them)."""
        return np.flatnonzero(~self._edge_open).astype(np.int64)

    @property
    def closed_nodes(self) -> IntArray:
        return np.flatnonzero(~self._node_open).astype(np.int64)

    def component_of(self, node_id: int) -> int:
        """Connected-component label of a node in the open graph (labels change with closures)."""
        return int(self._search().component[node_id])

    # ---- closures -------------------------------------------------------------------------

    def edges_near(self, xy: ArrayLike, radius_m: float) -> IntArray:
        """Ids of edges whose segment passes within `radius_m` of `xy`."""
        x, y = _as_xy(xy, "xy")
        a = self._node_xy[self._edges[:, 0]]
        b = self._node_xy[self._edges[:, 1]]
        ab = b - a
        denom = np.einsum("ij,ij->i", ab, ab)
        ap = np.array([x, y]) - a
        t = np.divide(np.einsum("ij,ij->i", ap, ab), denom, out=np.zeros_like(denom), where=denom > 0)
        nearest = a + np.clip(t, 0.0, 1.0)[:, None] * ab
        dist = np.hypot(nearest[:, 0] - x, nearest[:, 1] - y)
        return np.flatnonzero(dist <= radius_m).astype(np.int64)

    def close_edges_near(self, xy: ArrayLike, radius_m: float) -> IntArray:
        """Close every edge passing within `radius_m` of `xy`; returns their ids (for reopening)."""
        ids = self.edges_near(xy, radius_m)
        self.close_edges(ids)
        return ids

    def close_edges_in(self, shape: shapely.Geometry) -> IntArray:
        """Close every edge that touches `shape` (local metres, e.g. a construction site polygon)."""
        if self._segments is None:
            self._segments = shapely.linestrings(
                np.stack([self._node_xy[self._edges[:, 0]], self._node_xy[self._edges[:, 1]]], axis=1)
            )
        ids = np.flatnonzero(shapely.intersects(self._segments, shape)).astype(np.int64)
        self.close_edges(ids)
        return ids

    def close_edges(self, edge_ids: Iterable[int] | IntArray) -> None:
        self._set(self._edge_open, edge_ids, False, "edge")

    def reopen_edges(self, edge_ids: Iterable[int] | IntArray) -> None:
        self._set(self._edge_open, edge_ids, True, "edge")

    def close_nodes(self, node_ids: Iterable[int] | IntArray) -> None:
        """Close nodes: their edges are blocked and nothing snaps to them."""
        self._set(self._node_open, node_ids, False, "node")

    def reopen_nodes(self, node_ids: Iterable[int] | IntArray) -> None:
        self._set(self._node_open, node_ids, True, "node")

    def reopen_all(self) -> None:
        self._edge_open[:] = True
        self._node_open[:] = True
        self._csr = None

    def _set(self, mask: NDArray[np.bool_], ids: Iterable[int] | IntArray, value: bool, what: str) -> None:
        idx = np.fromiter((int(i) for i in ids), dtype=np.int64) if not isinstance(ids, np.ndarray) else ids
        if idx.dtype == np.bool_:
            raise ValueError(f"{what} ids must be integers, not a boolean mask")
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(mask)):
            raise ValueError(f"{what} ids must be in [0, {len(mask)})")
        mask[idx] = value
        self._csr = None

    # ---- search ---------------------------------------------------------------------------

    def _search(self) -> CsrGraph:
        if self._csr is None:
            e = self._edges
            open_ = self._edge_open & self._node_open[e[:, 0]] & self._node_open[e[:, 1]]
            self._csr = CsrGraph.build(self.n_nodes, e[open_], self._lengths[open_])
        return self._csr

    def _eligible(self) -> NDArray[np.bool_]:
        """Nodes a point may snap to: open and with at least one open edge (a read-only mask)."""
        search = self._search()
        if self._eligible_for is not search:
            self._eligible_mask = self._node_open & (search.degree > 0)
            self._eligible_mask.setflags(write=False)
            self._eligible_for = search
        return self._eligible_mask

    def _nearest(self, xy: tuple[float, float], mask: NDArray[np.bool_], max_walk_m: float) -> Snap | None:
        """Nearest node with `mask` set within `max_walk_m`, or None."""
        if self._tree is None or not mask.any():
            return None
        n = self.n_nodes
        k = min(8, n)
        bound = max_walk_m if math.isfinite(max_walk_m) else np.inf
        while True:
            dist, idx = self._tree.query(xy, k=k, distance_upper_bound=bound * (1 + 1e-12) + 1e-12)
            dist = np.atleast_1d(dist)
            idx = np.atleast_1d(idx)
            found = idx < n
            ok = np.flatnonzero(found & mask[np.minimum(idx, n - 1)])
            if ok.size:
                j = int(idx[ok[0]])
                d = float(dist[ok[0]])
                return Snap(j, (float(self._node_xy[j, 0]), float(self._node_xy[j, 1])), d)
            if not found.all() or k >= n:
                return None  # every node within the bound was looked at
            k = min(k * 4, n)

    def snap(
        self, xy: ArrayLike, *, reference_xy: ArrayLike | None = None, max_walk_m: float | None = None
    ) -> Snap:
        """The nearest open node to `xy` (reachable from `reference_xy`'s node when given).

        `reference_xy` is typically the depot: it snaps to its own nearest open node first, and
        `xy` then snaps within that node's connected component. Raises NoRoute when no such node
        lies within `max_walk_m` (default: the graph's `max_walk_m`) of `xy` or of the reference.
        """
        limit = self.max_walk_m if max_walk_m is None else float(max_walk_m)
        point = _as_xy(xy, "xy")
        mask = self._eligible()
        if reference_xy is not None:
            ref = self._nearest(_as_xy(reference_xy, "reference_xy"), mask, limit)
            if ref is None:
                raise NoRoute(f"no open sidewalk node within {limit:.1f} m of the reference point")
            mask = mask & (self._search().component == self._search().component[ref.node_id])
        found = self._nearest(point, mask, limit)
        if found is None:
            where = "reachable " if reference_xy is not None else ""
            raise NoRoute(
                f"no {where}open sidewalk node within {limit:.1f} m of ({point[0]:.1f}, {point[1]:.1f})"
            )
        return found

    def shortest_path(self, src: int, dst: int) -> NetworkPath:
        """Exact shortest path between two nodes over open edges; NoRoute if there is none."""
        for node in (src, dst):
            if not 0 <= node < self.n_nodes:
                raise ValueError(f"node id {node} out of range [0, {self.n_nodes})")
        if not (self._node_open[src] and self._node_open[dst]):
            raise NoRoute(f"node {src if not self._node_open[src] else dst} is closed")
        a = self._node_xy[src]
        b = self._node_xy[dst]
        straight_m = float(np.hypot(*(a - b)))
        found = self._search().shortest(int(src), int(dst), self._radius_factor_now() * straight_m)
        if found is None:
            raise NoRoute(f"no open sidewalk path from node {src} to node {dst}")
        length, nodes = found
        if straight_m > 0 and math.isfinite(length):
            self._detours.append(length / straight_m)
        return NetworkPath(length, tuple(nodes))

    def _radius_factor_now(self) -> float:
        if len(self._detours) < _DETOUR_MIN_SAMPLES:
            return self.radius_factor
        # A speed hint only (the search is exact for any radius); a few odd pairs do not matter.
        return 0.5 * float(np.percentile(np.fromiter(self._detours, dtype=np.float64), _DETOUR_QUANTILE))

    def route(
        self, start_xy: ArrayLike, goal_xy: ArrayLike, *, max_walk_m: float | None = None
    ) -> SidewalkRoute:
        """Shortest route from `start_xy` to `goal_xy` including the walks onto and off the network.

        The start snaps to its nearest open node; if the goal cannot reach that node's component
        within `max_walk_m`, the next-nearest components of the start are tried (a few), so a
        stray fragment next to the depot does not strand the robot.
        """
        limit = self.max_walk_m if max_walk_m is None else float(max_walk_m)
        start = _as_xy(start_xy, "start_xy")
        goal = _as_xy(goal_xy, "goal_xy")
        eligible = self._eligible()
        component = self._search().component
        start_mask = eligible.copy()
        for _ in range(8):
            s = self._nearest(start, start_mask, limit)
            if s is None:
                break
            comp = component[s.node_id]
            g = self._nearest(goal, eligible & (component == comp), limit)
            if g is not None:
                return self._assemble(start, goal, s, g)
            start_mask &= component != comp
        raise NoRoute(
            f"no open sidewalk route from ({start[0]:.1f}, {start[1]:.1f}) to ({goal[0]:.1f}, {goal[1]:.1f}) "
            f"with walks of at most {limit:.1f} m onto and off the network"
        )

    # ---- one to many ----------------------------------------------------------------------

    def routes_from(
        self,
        origin_xy: ArrayLike,
        targets_xy: Sequence[tuple[float, float]] | ArrayLike,
        *,
        max_walk_m: float | None = None,
    ) -> list[SidewalkRoute | None]:
        """`route(origin_xy, t, max_walk_m=...)` for every target `t`, from one single-source search.

        Entry i is None exactly where `route(origin_xy, targets_xy[i])` raises NoRoute (no open
        node within `max_walk_m` of the origin, or of the target in a component the origin
        reaches; closures included): one unreachable drop point does not spoil the others. A
        malformed point raises ValueError as `route` does. Snapping, the fallback to the origin's
        next-nearest components and the walks are `route`'s, so each length equals `route`'s (to
        rounding) and so do both ends; where two paths tie the node sequence may differ.
        """
        fan = self._fan(origin_xy, targets_xy, max_walk_m, paths=True)
        out: list[SidewalkRoute | None] = [None] * len(fan.goals)
        if not fan.index.size:
            return out
        assert fan.pred is not None
        chains = _unwind_many(fan.pred, fan.g_node[fan.index])
        for i, nodes in zip(fan.index.tolist(), chains, strict=True):
            path = NetworkPath(float(fan.dist[fan.g_node[i]]), tuple(nodes.tolist()))
            goal = (float(fan.goals[i, 0]), float(fan.goals[i, 1]))
            out[i] = self._make_route(
                fan.start, goal, float(fan.s_walk[i]), float(fan.g_walk[i]), path, nodes
            )
        return out

    def lengths_from(
        self,
        origin_xy: ArrayLike,
        targets_xy: Sequence[tuple[float, float]] | ArrayLike,
        *,
        max_walk_m: float | None = None,
    ) -> FloatArray:
        """`route(origin_xy, t).length_m` for every target, np.inf where `route` raises NoRoute;
        one single-source search and no routes built (see `routes_from`)."""
        fan = self._fan(origin_xy, targets_xy, max_walk_m, paths=False)
        out = np.full(len(fan.goals), np.inf, dtype=np.float64)
        i = fan.index
        out[i] = fan.s_walk[i] + fan.dist[fan.g_node[i]] + fan.g_walk[i]  # summed in route()'s order
        return out

    def _fan(
        self,
        origin_xy: ArrayLike,
        targets_xy: Sequence[tuple[float, float]] | ArrayLike,
        max_walk_m: float | None,
        *,
        paths: bool,
    ) -> _Fan:
        """Snap the origin and every target as `route` does, then one Dijkstra from the origin's node(s)."""
        limit = self.max_walk_m if max_walk_m is None else float(max_walk_m)
        start = _as_xy(origin_xy, "origin_xy")
        goals = np.array(targets_xy, dtype=np.float64)
        if goals.size == 0:
            goals = goals.reshape(0, 2)
        if goals.ndim != 2 or goals.shape[1] != 2 or not np.all(np.isfinite(goals)):
            raise ValueError(
                f"targets_xy must be finite (x_m, y_m) pairs, got an array of shape {goals.shape}"
            )
        t = len(goals)
        s_node = np.full(t, -1, dtype=np.int64)
        g_node = np.full(t, -1, dtype=np.int64)
        s_walk = np.full(t, np.nan, dtype=np.float64)
        g_walk = np.full(t, np.nan, dtype=np.float64)
        sources: list[int] = []
        if t:
            eligible = self._eligible()
            component = self._search().component
            start_mask = eligible.copy()
            pending = np.arange(t)
            for _ in range(8):  # as `route`: the origin's nearest components in turn, a few
                s = self._nearest(start, start_mask, limit)
                if s is None:
                    break
                comp = component[s.node_id]
                node, walk = self._nearest_many(goals[pending], eligible & (component == comp), limit)
                hit = node >= 0
                if hit.any():
                    rows = pending[hit]
                    sources.append(s.node_id)
                    s_node[rows] = s.node_id
                    s_walk[rows] = s.walk_m
                    g_node[rows] = node[hit]
                    g_walk[rows] = walk[hit]
                pending = pending[~hit]
                if not pending.size:
                    break
                start_mask &= component != comp
        index = np.flatnonzero(s_node >= 0)
        if not sources:
            return _Fan(start, goals, index, s_node, s_walk, g_node, g_walk, np.empty(0), None)
        # The sources lie in different components, so one search labels every node with the
        # distance from its own component's source.
        found = dijkstra(
            self._search().matrix, directed=True, indices=sources, min_only=True, return_predecessors=paths
        )
        dist, pred = (found[0], found[1]) if paths else (found, None)
        return _Fan(start, goals, index, s_node, s_walk, g_node, g_walk, np.asarray(dist, np.float64), pred)

    def _nearest_many(
        self, points: FloatArray, mask: NDArray[np.bool_], max_walk_m: float
    ) -> tuple[IntArray, FloatArray]:
        """`_nearest` for each row of `points` as (node ids, walks), -1 and inf where none; one
        batched tree query serves all but the points whose nearest nodes are all masked out."""
        m = len(points)
        node = np.full(m, -1, dtype=np.int64)
        walk = np.full(m, np.inf, dtype=np.float64)
        if self._tree is None or not m or not mask.any():
            return node, walk
        n = self.n_nodes
        k = min(8, n)
        bound = max_walk_m if math.isfinite(max_walk_m) else np.inf
        dist, idx = self._tree.query(points, k=k, distance_upper_bound=bound * (1 + 1e-12) + 1e-12)
        dist = np.asarray(dist, dtype=np.float64).reshape(m, k)
        idx = np.asarray(idx, dtype=np.int64).reshape(m, k)
        found = idx < n
        ok = found & mask[np.minimum(idx, n - 1)]
        any_ok = ok.any(axis=1)
        rows = np.flatnonzero(any_ok)
        first = np.argmax(ok[rows], axis=1)
        node[rows] = idx[rows, first]
        walk[rows] = dist[rows, first]
        if k < n:  # the k nearest were all within the bound and all masked out: look further
            for r in np.flatnonzero(~any_ok & found.all(axis=1)).tolist():
                snap = self._nearest((float(points[r, 0]), float(points[r, 1])), mask, max_walk_m)
                if snap is not None:
                    node[r] = snap.node_id
                    walk[r] = snap.walk_m
        return node, walk

    def _assemble(
        self, start: tuple[float, float], goal: tuple[float, float], s: Snap, g: Snap
    ) -> SidewalkRoute:
        path = self.shortest_path(s.node_id, g.node_id)
        return self._make_route(start, goal, s.walk_m, g.walk_m, path)

    def _make_route(
        self,
        start: tuple[float, float],
        goal: tuple[float, float],
        walk_start_m: float,
        walk_goal_m: float,
        path: NetworkPath,
        nodes: IntArray | None = None,
    ) -> SidewalkRoute:
        """The route along `path` with the walks; `nodes` is `path.node_ids` as an array if at hand."""
        ids = np.asarray(path.node_ids, dtype=np.int64) if nodes is None else nodes
        lead = int(walk_start_m > 0)
        points = np.empty((lead + len(ids) + int(walk_goal_m > 0), 2), dtype=np.float64)
        if lead:
            points[0] = start
        points[lead : lead + len(ids)] = self._node_xy[ids]
        if walk_goal_m > 0:
            points[-1] = goal
        return SidewalkRoute(
            points=points,
            length_m=walk_start_m + path.length_m + walk_goal_m,
            network_length_m=path.length_m,
            walk_start_m=walk_start_m,
            walk_goal_m=walk_goal_m,
            node_ids=path.node_ids,
        )


@dataclass(frozen=True)
class _Fan:
    """Targets snapped as `route` snaps them, and one search from the origin's node(s).

    Per target (-1 / nan where there is no route): the origin's node and walk, the target's
    node and walk; `index` lists the targets with a route. `dist`/`pred` are per node.
    """

    start: tuple[float, float]
    goals: FloatArray
    index: IntArray
    s_node: IntArray
    s_walk: FloatArray
    g_node: IntArray
    g_walk: FloatArray
    dist: FloatArray
    pred: NDArray[np.int32] | None


def _unwind_many(pred: NDArray[np.int32], ends: IntArray) -> list[IntArray]:
    """Node ids from the search's source to each of `ends`, walking all predecessor chains in step
    (one numpy operation per hop of the deepest chain, not one Python step per node)."""
    n = len(pred)
    step = np.empty(n + 1, dtype=np.int64)  # node -> predecessor; node n is "no predecessor"
    step[:n] = pred
    step[:n][pred < 0] = n  # scipy marks "no predecessor" with -9999
    step[n] = n
    chains = [ends.astype(np.int64)]
    while True:
        nxt = step[chains[-1]]
        if bool((nxt == n).all()):
            break
        chains.append(nxt)
    table = np.stack(chains)  # (hops, targets); a chain, once ended, stays n
    depth = (table != n).sum(axis=0).tolist()
    return [table[d - 1 :: -1, j] for j, d in enumerate(depth)]


def _cluster(verts: FloatArray, snap_m: float) -> tuple[IntArray, FloatArray]:
    """Node label per vertex and node coordinates (mean of each cluster's vertices)."""
    # Exact duplicates first (vectorised): shared OSM junction vertices are the common case.
    uniq, inverse = np.unique(verts, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    lead = np.arange(len(uniq))
    if snap_m > 0 and len(uniq) > 1:
        pairs = cKDTree(uniq).query_pairs(snap_m, output_type="ndarray")
        if len(pairs):
            both = np.concatenate([pairs, pairs[:, ::-1]])
            adj = coo_matrix(
                (np.ones(len(both)), (both[:, 0], both[:, 1])), shape=(len(uniq), len(uniq))
            ).tocsr()
            involved = np.unique(pairs)
            assigned = np.zeros(len(uniq), dtype=bool)
            # Leader clustering over the few vertices that have a close neighbour: a vertex that
            # is not yet taken leads a cluster of its untaken neighbours (diameter <= 2 * snap_m).
            for v in involved.tolist():
                if assigned[v]:
                    continue
                assigned[v] = True
                nbrs = adj.indices[adj.indptr[v] : adj.indptr[v + 1]]
                free = nbrs[~assigned[nbrs]]
                assigned[free] = True
                lead[free] = v
    roots, node_of_uniq = np.unique(lead, return_inverse=True)
    n = len(roots)
    count = np.bincount(node_of_uniq, minlength=n).astype(np.float64)
    xy = np.stack(
        [
            np.bincount(node_of_uniq, weights=uniq[:, 0], minlength=n) / count,
            np.bincount(node_of_uniq, weights=uniq[:, 1], minlength=n) / count,
        ],
        axis=1,
    )
    return node_of_uniq[inverse].astype(np.int64), xy.astype(np.float64)


def _densify(
    node_xy: FloatArray, edges: IntArray, lengths: FloatArray, max_segment_m: float
) -> tuple[FloatArray, IntArray]:
    """Split every edge longer than `max_segment_m` into equal pieces with new nodes."""
    pieces = np.maximum(np.ceil(lengths / max_segment_m), 1).astype(np.int64)
    extra = pieces - 1
    total = int(extra.sum())
    if total == 0:
        return node_xy, edges
    n0 = len(node_xy)
    long_ = np.flatnonzero(extra > 0)
    seg = np.repeat(long_, extra[long_])  # the edge each new node lies on
    first_new = n0 + np.cumsum(extra[long_]) - extra[long_]  # id of each long edge's first new node
    step = np.arange(total) - np.repeat(first_new - n0, extra[long_]) + 1  # 1 .. extra along the edge
    a = node_xy[edges[seg, 0]]
    b = node_xy[edges[seg, 1]]
    new_xy = a + (step / pieces[seg])[:, None] * (b - a)
    new_ids = n0 + np.arange(total)
    last_new = first_new + extra[long_] - 1
    inner = new_ids[step < extra[seg]]  # new nodes followed by another new node on the same edge
    chains = np.concatenate(
        [
            edges[extra == 0],
            np.stack([edges[long_, 0], first_new], axis=1),
            np.stack([inner, inner + 1], axis=1),
            np.stack([last_new, edges[long_, 1]], axis=1),
        ]
    )
    return np.concatenate([node_xy, new_xy]).astype(np.float64), chains.astype(np.int64)
