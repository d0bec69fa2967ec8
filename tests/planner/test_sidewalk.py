"""Sidewalk graph: exact routes (checked against networkx), snapping, walking, closures."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import networkx as nx  # type: ignore[import-untyped]
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from planner._graph import CsrGraph
from planner.errors import NoRoute, PlanningError
from planner.sidewalk import SidewalkGraph, SidewalkRoute
from planner.site import load_site

_Case = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64] | None, float]


def _nx_graph(g: SidewalkGraph) -> nx.Graph:
    ref = nx.Graph()
    ref.add_nodes_from(range(g.n_nodes))
    for (u, v), w in zip(g.edges.tolist(), g.lengths.tolist(), strict=True):
        ref.add_edge(u, v, weight=w)
    return ref


def _path_length(g: SidewalkGraph, nodes: tuple[int, ...]) -> float:
    weight = {
        (min(u, v), max(u, v)): w for (u, v), w in zip(g.edges.tolist(), g.lengths.tolist(), strict=True)
    }
    return float(sum(weight[(min(a, b), max(a, b))] for a, b in itertools.pairwise(nodes)))


@st.composite
def random_graphs(draw: st.DrawFn) -> _Case:
    n = draw(st.integers(2, 25))
    xy = np.array(
        draw(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=n, max_size=n)), float
    )
    edges = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=0, max_size=3 * n)
    )
    e = np.array(edges, dtype=np.int64).reshape(-1, 2)
    lengths = None
    if draw(st.booleans()):  # arbitrary (non-Euclidean, possibly zero) lengths: radius guesses are wrong
        lengths = np.array(
            draw(
                st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 100.0, 1e4]), min_size=len(e), max_size=len(e))
            )
        )
    factor = draw(st.sampled_from([0.01, 0.3, 0.65, 5.0]))
    return xy, e, lengths, factor


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.data())
def test_shortest_path_matches_networkx(case: _Case, data: st.DataObject) -> None:
    xy, e, lengths, factor = case
    g = SidewalkGraph.from_arrays(xy, e, lengths)
    g.radius_factor = factor
    ref = _nx_graph(g)
    for _ in range(4):
        s = data.draw(st.integers(0, g.n_nodes - 1))
        t = data.draw(st.integers(0, g.n_nodes - 1))
        try:
            expected = nx.dijkstra_path_length(ref, s, t)
        except nx.NetworkXNoPath:
            with pytest.raises(NoRoute):
                g.shortest_path(s, t)
            continue
        got = g.shortest_path(s, t)
        assert got.length_m == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert got.node_ids[0] == s
        assert got.node_ids[-1] == t
        assert _path_length(g, got.node_ids) == pytest.approx(got.length_m, rel=1e-9, abs=1e-9)


@settings(max_examples=120, deadline=None)
@given(
    side=st.integers(3, 9),
    seed=st.integers(0, 2**32 - 1),
    drop=st.floats(0.0, 0.4),
    stretch=st.booleans(),
    factor=st.floats(0.05, 2.0),
    closures=st.booleans(),
)
def test_grid_like_graphs_match_networkx(
    side: int, seed: int, drop: float, stretch: bool, factor: float, closures: bool
) -> None:
    # Many near-equal alternative paths: a meeting edge accepted too early would show here.
    g = _jittered_grid(side, seed, drop)
    if stretch:  # lengths no longer Euclidean, so the first search radius is a poor guess
        rng = np.random.default_rng(seed)
        g = SidewalkGraph.from_arrays(g.node_xy, g.edges, g.lengths * rng.uniform(1.0, 3.0, g.n_edges))
    g.radius_factor = factor
    ref = _nx_graph(g)
    rng = np.random.default_rng(seed + 1)
    if closures and g.n_edges:  # the open graph is what must be searched, exactly
        shut_edges = rng.choice(g.n_edges, size=max(1, g.n_edges // 10), replace=False)
        shut_nodes = rng.choice(g.n_nodes, size=max(1, g.n_nodes // 20), replace=False)
        g.close_edges(shut_edges)
        g.close_nodes(shut_nodes)
        ref.remove_edges_from([tuple(e) for e in g.edges[shut_edges].tolist()])
        ref.remove_edges_from(list(ref.edges(shut_nodes.tolist())))
    for s, t in rng.integers(0, g.n_nodes, (6, 2)).tolist():
        if closures and (s in g.closed_nodes or t in g.closed_nodes):
            with pytest.raises(NoRoute):
                g.shortest_path(s, t)
            continue
        if not nx.has_path(ref, s, t):
            with pytest.raises(NoRoute):
                g.shortest_path(s, t)
            continue
        got = g.shortest_path(s, t)
        assert got.length_m == pytest.approx(nx.dijkstra_path_length(ref, s, t), rel=1e-9, abs=1e-12)
        assert _path_length(g, got.node_ids) == pytest.approx(got.length_m, rel=1e-9)


def _jittered_grid(side: int, seed: int, drop: float) -> SidewalkGraph:
    rng = np.random.default_rng(seed)
    ij = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
    xy = ij * 10.0 + rng.uniform(-3, 3, ij.shape)
    idx = np.arange(side * side).reshape(side, side)
    e = np.concatenate(
        [
            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
            np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
        ]
    )
    return SidewalkGraph.from_arrays(xy, e[rng.random(len(e)) > drop])


def test_grid_queries_match_networkx() -> None:
    g = _jittered_grid(40, seed=3, drop=0.25)
    ref = _nx_graph(g)
    rng = np.random.default_rng(4)
    checked = 0
    for s, t in rng.integers(0, g.n_nodes, (40, 2)).tolist():
        if not nx.has_path(ref, s, t):
            with pytest.raises(NoRoute):
                g.shortest_path(s, t)
            continue
        assert g.shortest_path(s, t).length_m == pytest.approx(nx.dijkstra_path_length(ref, s, t), rel=1e-12)
        checked += 1
    assert checked > 20


def test_search_is_exact_for_any_first_radius() -> None:
    # Drive the core search with first radii around the critical d/2, where a wrong acceptance
    # test (accepting a meeting edge whose candidate is longer than twice the radius) would err.
    g = _jittered_grid(30, seed=11, drop=0.2)
    search = CsrGraph.build(g.n_nodes, g.edges, g.lengths)
    rng = np.random.default_rng(12)
    pairs = rng.integers(0, g.n_nodes, (60, 2)).tolist()
    full = dijkstra(search.matrix, directed=False, indices=sorted({s for s, _ in pairs}))
    row = {s: i for i, s in enumerate(sorted({s for s, _ in pairs}))}
    checked = 0
    for s, t in pairs:
        expected = float(full[row[s], t])
        if not math.isfinite(expected) or s == t:
            assert search.shortest(s, t, 1.0) is None or s == t
            continue
        for frac in np.linspace(0.30, 0.62, 17):
            found = search.shortest(s, t, frac * expected)
            assert found is not None
            assert found[0] == pytest.approx(expected, rel=1e-12)
            checked += 1
    assert checked > 500


# ---- from_lines --------------------------------------------------------------------------------


def test_lines_sharing_or_nearly_sharing_endpoints_join() -> None:
    a = np.array([[0.0, 0.0], [100.0, 0.0]])
    b = np.array([[100.3, 0.0], [100.3, 50.0]])  # 0.3 m gap: snapped
    g = SidewalkGraph.from_lines([a, b], snap_m=0.5, max_segment_m=None)
    assert g.n_nodes == 3
    r = g.route((0.0, 0.0), (100.3, 50.0))
    assert r.network_length_m == pytest.approx(100.15 + math.hypot(0.15, 50.0), rel=1e-9)
    # Beyond snap_m the two lines stay apart: the goal is unreachable within a tiny walk.
    far = SidewalkGraph.from_lines([a, b], snap_m=0.2, max_segment_m=None, max_walk_m=1.0)
    assert far.n_nodes == 4
    with pytest.raises(NoRoute):
        far.route((0.0, 0.0), (100.3, 50.0))


def test_crossing_lines_join_only_when_asked() -> None:
    h = np.array([[0.0, 0.0], [100.0, 0.0]])
    v = np.array([[50.0, -50.0], [50.0, 50.0]])
    bridge = SidewalkGraph.from_lines([h, v], max_walk_m=5.0)
    with pytest.raises(NoRoute):
        bridge.route((0.0, 0.0), (50.0, 50.0))  # over/underpass: no junction
    noded = SidewalkGraph.from_lines([h, v], split_crossings=True, max_walk_m=5.0)
    assert noded.route((0.0, 0.0), (50.0, 50.0)).length_m == pytest.approx(100.0)


def test_dense_line_does_not_collapse_by_chaining() -> None:
    x = np.arange(0.0, 20.0, 0.2)
    line = np.stack([x, np.zeros_like(x)], axis=1)
    g = SidewalkGraph.from_lines([line], snap_m=0.5)
    assert g.n_nodes > 10  # transitive merging would leave one node
    r = g.route((0.0, 0.0), (x[-1], 0.0))
    assert r.length_m == pytest.approx(x[-1], abs=1e-9)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="line 0"):
        SidewalkGraph.from_lines([np.array([[0.0, 0.0]])])
    with pytest.raises(ValueError, match="node ids"):
        SidewalkGraph.from_arrays([[0, 0], [1, 1]], [[0, 2]])
    with pytest.raises(ValueError, match="finite"):
        SidewalkGraph.from_arrays([[0, 0], [1, 1]], [[0, 1]], [-1.0])


def test_parallel_edges_keep_the_shortest_and_self_loops_go() -> None:
    g = SidewalkGraph.from_arrays([[0, 0], [10, 0]], [[0, 1], [1, 0], [0, 0]], [5.0, 3.0, 1.0])
    assert g.n_edges == 1
    assert g.shortest_path(0, 1).length_m == 3.0


# ---- routes, snapping and walking ---------------------------------------------------------------


def _ladder() -> SidewalkGraph:
    """Two parallel streets (y=0 and y=20) joined by crossings at x=0, 50 and 100."""
    lines = [
        np.array([[0.0, 0.0], [50.0, 0.0], [100.0, 0.0]]),
        np.array([[0.0, 20.0], [50.0, 20.0], [100.0, 20.0]]),
        np.array([[0.0, 0.0], [0.0, 20.0]]),
        np.array([[50.0, 0.0], [50.0, 20.0]]),
        np.array([[100.0, 0.0], [100.0, 20.0]]),
    ]
    return SidewalkGraph.from_lines(lines, max_segment_m=None, max_walk_m=30.0)


def test_long_segments_are_split_so_points_snap_close() -> None:
    line = np.array([[0.0, 0.0], [200.0, 0.0]])
    coarse = SidewalkGraph.from_lines([line], max_segment_m=None)
    fine = SidewalkGraph.from_lines([line], max_segment_m=20.0)
    assert coarse.n_nodes == 2
    assert fine.n_nodes == 11
    assert float(fine.lengths.max()) == pytest.approx(20.0)
    assert coarse.snap((95.0, 5.0), max_walk_m=math.inf).walk_m > 90.0
    assert fine.snap((95.0, 5.0)).walk_m == pytest.approx(math.hypot(5.0, 5.0))
    assert fine.route((0.0, 0.0), (200.0, 0.0)).length_m == pytest.approx(200.0)
    assert fine.edges_near((95.0, 0.0), 1.0).size == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=2, max_size=6),
        min_size=1,
        max_size=8,
    ),
    st.floats(0.7, 9.0),
)
def test_splitting_keeps_network_distances(raw: list[list[tuple[int, int]]], max_segment_m: float) -> None:
    lines = [np.array(line, dtype=float) * 10.0 for line in raw]
    coarse = SidewalkGraph.from_lines(lines, snap_m=0.0, max_segment_m=None)
    fine = SidewalkGraph.from_lines(lines, snap_m=0.0, max_segment_m=max_segment_m)
    assert float(fine.lengths.max(initial=0.0)) <= max_segment_m + 1e-9
    assert float(fine.lengths.sum()) == pytest.approx(float(coarse.lengths.sum()))
    ref = _nx_graph(coarse)
    for s in range(min(coarse.n_nodes, 4)):
        for t in range(coarse.n_nodes):  # original vertices keep their ids; new nodes come after
            if nx.has_path(ref, s, t):
                expected = nx.dijkstra_path_length(ref, s, t)
                assert fine.shortest_path(s, t).length_m == pytest.approx(expected, rel=1e-9, abs=1e-9)
            else:
                with pytest.raises(NoRoute):
                    fine.shortest_path(s, t)


def test_split_points_never_join_crossing_lines() -> None:
    h = np.array([[0.0, 0.0], [100.0, 0.0]])
    v = np.array([[50.0, -50.0], [50.0, 50.0]])  # both get a new node exactly at (50, 0)
    g = SidewalkGraph.from_lines([h, v], max_segment_m=50.0, max_walk_m=5.0)
    assert g.n_nodes == 6
    with pytest.raises(NoRoute):
        g.route((0.0, 0.0), (50.0, 50.0))


def test_route_includes_walks_on_and_off_the_network() -> None:
    g = _ladder()
    r = g.route((-3.0, -4.0), (100.0, 26.0))
    assert r.walk_start_m == pytest.approx(5.0)
    assert r.walk_goal_m == pytest.approx(6.0)
    assert r.network_length_m == pytest.approx(120.0)
    assert r.length_m == pytest.approx(131.0)
    np.testing.assert_allclose(r.points[0], [-3.0, -4.0])
    np.testing.assert_allclose(r.points[-1], [100.0, 26.0])
    assert float(np.sum(np.hypot(*np.diff(r.points, axis=0).T))) == pytest.approx(r.length_m)
    assert r.duration_s(2.0) == pytest.approx(65.5)


def test_route_on_a_node_adds_no_walk_point() -> None:
    r = _ladder().route((0.0, 0.0), (50.0, 0.0))
    assert r.walk_start_m == 0.0
    assert r.walk_goal_m == 0.0
    assert r.points.shape == (2, 2)
    assert r.length_m == 50.0


def test_snap_returns_nearest_node_and_walk() -> None:
    g = _ladder()
    s = g.snap((48.0, 3.0))
    assert s.node_xy == (50.0, 0.0)
    assert s.walk_m == pytest.approx(math.hypot(2.0, 3.0))
    with pytest.raises(NoRoute):
        g.snap((500.0, 500.0))
    assert g.snap((500.0, 500.0), max_walk_m=math.inf).node_xy == (100.0, 20.0)


def test_snap_picks_nearest_reachable_node() -> None:
    main = np.array([[0.0, 0.0], [100.0, 0.0]])
    island = np.array([[100.0, 10.0], [110.0, 10.0]])  # nearer to the drop point, not connected
    g = SidewalkGraph.from_lines([main, island], max_walk_m=30.0)
    drop = (101.0, 9.0)
    assert g.snap(drop).node_xy == (100.0, 10.0)
    reachable = g.snap(drop, reference_xy=(0.0, 0.0))
    assert reachable.node_xy == (100.0, 0.0)
    assert reachable.walk_m == pytest.approx(math.hypot(1.0, 9.0))
    r = g.route((0.0, 0.0), drop)
    assert r.network_length_m == pytest.approx(100.0)
    assert r.walk_goal_m == pytest.approx(math.hypot(1.0, 9.0))


def test_route_skips_a_stray_fragment_next_to_the_start() -> None:
    main = np.array([[0.0, 5.0], [100.0, 5.0]])
    stub = np.array([[0.0, 0.0], [1.0, 0.0]])  # nearest to the depot but leads nowhere
    g = SidewalkGraph.from_lines([main, stub], max_walk_m=10.0)
    r = g.route((0.0, 0.5), (100.0, 5.0))
    assert r.node_ids[0] == g.snap((0.0, 5.0)).node_id
    assert r.length_m == pytest.approx(4.5 + 100.0)


# ---- closures ----------------------------------------------------------------------------------


def test_closure_changes_the_route_and_reopening_restores_it() -> None:
    g = _ladder()
    before = g.route((0.0, 0.0), (100.0, 0.0))
    assert before.length_m == pytest.approx(100.0)
    closed = g.close_edges_near((75.0, 0.0), 2.0)
    assert closed.size == 1
    detour = g.route((0.0, 0.0), (100.0, 0.0))
    assert detour.length_m == pytest.approx(140.0)  # over the middle crossing and back
    assert (50.0, 20.0) in {tuple(p) for p in detour.points.tolist()}
    g.reopen_edges(closed)
    assert g.route((0.0, 0.0), (100.0, 0.0)).length_m == pytest.approx(100.0)


def test_closures_can_leave_no_route() -> None:
    g = _ladder()
    g.close_edges_in(shapely.box(70.0, -5.0, 80.0, 25.0))  # both streets cut at x=75
    with pytest.raises(NoRoute):
        g.route((0.0, 0.0), (100.0, 0.0))
    with pytest.raises(NoRoute):
        g.shortest_path(0, g.snap((100.0, 0.0), max_walk_m=math.inf).node_id)
    g.reopen_all()
    assert g.route((0.0, 0.0), (100.0, 0.0)).length_m == pytest.approx(100.0)


def test_closed_nodes_block_and_do_not_attract_snaps() -> None:
    g = _ladder()
    corner = g.snap((100.0, 0.0)).node_id
    g.close_nodes([corner])
    s = g.snap((100.0, 0.0))
    assert s.node_xy in {(50.0, 0.0), (100.0, 20.0)}
    assert s.walk_m == pytest.approx(20.0)
    with pytest.raises(NoRoute):
        g.shortest_path(0, corner)
    assert g.closed_nodes.tolist() == [corner]
    g.reopen_nodes([corner])
    assert g.snap((100.0, 0.0)).node_id == corner


def test_closure_ids_are_checked() -> None:
    g = _ladder()
    with pytest.raises(ValueError, match="boolean"):
        g.close_edges(np.ones(g.n_edges, dtype=bool))
    with pytest.raises(ValueError, match="edge ids"):
        g.close_edges([g.n_edges])
    assert g.closed_edges.size == 0


def test_isolated_node_is_not_a_snap_target() -> None:
    g = _ladder()
    g.close_edges_near((100.0, 0.0), 1.0)  # the corner loses both its edges
    s = g.snap((100.0, 0.0))
    assert s.node_xy != (100.0, 0.0)


def test_copy_has_its_own_closures() -> None:
    g = _ladder()
    scratch = g.copy()
    scratch.close_edges_near((75.0, 0.0), 2.0)
    assert scratch.route((0.0, 0.0), (100.0, 0.0)).length_m == pytest.approx(140.0)
    assert g.route((0.0, 0.0), (100.0, 0.0)).length_m == pytest.approx(100.0)


def test_no_route_is_a_planning_error() -> None:
    g = SidewalkGraph.from_lines([])
    with pytest.raises(PlanningError):
        g.route((0.0, 0.0), (1.0, 1.0))


# ---- one to many: routes_from / lengths_from ----------------------------------------------------

BUNDLED = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"


def _route_or_none(g: SidewalkGraph, a: tuple[float, float], b: tuple[float, float]) -> SidewalkRoute | None:
    try:
        return g.route(a, b)
    except NoRoute:
        return None


def _assert_same_as_route(g: SidewalkGraph, origin: tuple[float, float], targets: list[tuple[float, float]]) -> int:
    """routes_from / lengths_from agree with route() target by target; returns how many routes exist."""
    many = g.routes_from(origin, targets)
    lengths = g.lengths_from(origin, targets)
    assert len(many) == len(targets) == len(lengths)
    closed = {tuple(e) for e in g.edges[g.closed_edges].tolist()}
    weight = {
        (min(u, v), max(u, v)): w
        for (u, v), w in zip(g.edges.tolist(), g.lengths.tolist(), strict=True)
        if (u, v) not in closed  # a closed edge is no step of any path
    }
    shut = set(g.closed_nodes.tolist())
    found = 0
    for target, got, length in zip(targets, many, lengths.tolist(), strict=True):
        ref = _route_or_none(g, origin, target)
        if ref is None:
            assert got is None
            assert length == math.inf
            continue
        found += 1
        assert got is not None
        assert got.length_m == pytest.approx(ref.length_m, rel=1e-9, abs=1e-6)
        assert length == pytest.approx(ref.length_m, rel=1e-9, abs=1e-6)
        assert (got.walk_start_m, got.walk_goal_m) == (ref.walk_start_m, ref.walk_goal_m)
        assert (got.node_ids[0], got.node_ids[-1]) == (ref.node_ids[0], ref.node_ids[-1])
        np.testing.assert_array_equal(got.points[[0, -1]], ref.points[[0, -1]])
        # the path is a real walk over open edges: its polyline is as long as the route says
        assert float(np.sum(np.hypot(*np.diff(got.points, axis=0).T))) == pytest.approx(got.length_m, abs=1e-6)
        assert not shut & set(got.node_ids)
        hops = sum(weight[(min(a, b), max(a, b))] for a, b in itertools.pairwise(got.node_ids))
        assert hops == pytest.approx(got.network_length_m, abs=1e-6)
    return found


def test_routes_from_equals_route_on_the_bundled_site() -> None:
    site = load_site(BUNDLED)
    g = site.sidewalks
    targets = [d.xy_m for d in site.drop_points.values()]
    rng = np.random.default_rng(5)
    targets += [tuple(p) for p in rng.uniform(-1500.0, 1500.0, (60, 2)).tolist()]  # some off the network
    for depot in site.depots.values():
        found = _assert_same_as_route(g, depot.xy_m, targets)
        assert found > 250


def test_routes_from_honours_closures() -> None:
    g = _ladder()
    targets = [(100.0, 0.0), (100.0, 20.0), (50.0, 3.0), (-3.0, -4.0)]
    g.close_edges_near((75.0, 0.0), 2.0)
    got = g.routes_from((0.0, 0.0), targets)
    assert got[0] is not None
    assert got[0].length_m == pytest.approx(140.0)  # over the middle crossing and back
    _assert_same_as_route(g, (0.0, 0.0), targets)
    g.close_nodes([g.snap((100.0, 20.0)).node_id])  # the far corner: snaps elsewhere or not at all
    _assert_same_as_route(g, (0.0, 0.0), targets)
    g.close_edges_in(shapely.box(70.0, -5.0, 80.0, 25.0))  # both streets cut: the far end is cut off
    lengths = g.lengths_from((0.0, 0.0), targets)
    assert lengths[0] == math.inf  # no reachable node within the ladder's 30 m walk
    assert lengths[2] == pytest.approx(50.0 + 3.0)
    _assert_same_as_route(g, (0.0, 0.0), targets)


def test_routes_from_unreachable_targets_are_none() -> None:
    main = np.array([[0.0, 0.0], [100.0, 0.0]])
    island = np.array([[300.0, 0.0], [400.0, 0.0]])
    g = SidewalkGraph.from_lines([main, island], max_walk_m=10.0)
    targets = [(100.0, 5.0), (350.0, 0.0), (5000.0, 0.0)]
    got = g.routes_from((0.0, 0.0), targets)
    assert got[0] is not None
    assert got[0].length_m == pytest.approx(105.0)
    assert got[1] is None  # another component, and too far to walk from this one
    assert got[2] is None  # off the network
    np.testing.assert_array_equal(g.lengths_from((0.0, 0.0), targets)[1:], [np.inf, np.inf])
    # an origin off the network: nothing is reachable, as route() raises for every target
    assert g.routes_from((0.0, 500.0), targets) == [None, None, None]
    assert np.isinf(g.lengths_from((0.0, 500.0), targets)).all()
    _assert_same_as_route(g, (0.0, 0.0), targets)


def test_routes_from_falls_back_to_the_next_component_like_route() -> None:
    main = np.array([[0.0, 5.0], [100.0, 5.0]])
    stub = np.array([[0.0, 0.0], [1.0, 0.0]])  # nearest to the depot but leads nowhere
    g = SidewalkGraph.from_lines([main, stub], max_walk_m=10.0)
    targets = [(100.0, 5.0), (1.0, 1.0), (50.0, 5.0)]
    got = g.routes_from((0.0, 0.5), targets)
    assert got[0] is not None
    assert got[0].length_m == pytest.approx(4.5 + 100.0)
    assert got[1] is not None
    assert got[1].node_ids[0] == g.snap((0.0, 0.0)).node_id  # the stub serves what it reaches
    _assert_same_as_route(g, (0.0, 0.5), targets)


def test_routes_from_input() -> None:
    g = _ladder()
    assert g.routes_from((0.0, 0.0), []) == []
    assert g.lengths_from((0.0, 0.0), np.empty((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="targets_xy"):
        g.routes_from((0.0, 0.0), [(1.0, math.nan)])
    with pytest.raises(ValueError, match="origin_xy"):
        g.lengths_from((0.0, math.inf), [(1.0, 1.0)])
    same = g.routes_from((0.0, 0.0), np.array([[0.0, 0.0], [0.0, 0.0]]))
    assert [r.length_m if r else None for r in same] == [0.0, 0.0]
    assert SidewalkGraph.from_lines([]).routes_from((0.0, 0.0), [(1.0, 1.0)]) == [None]


@settings(max_examples=80, deadline=None)
@given(side=st.integers(2, 8), seed=st.integers(0, 2**32 - 1), drop=st.floats(0.0, 0.5), closures=st.booleans())
def test_routes_from_matches_route_on_random_grids(side: int, seed: int, drop: float, closures: bool) -> None:
    g = _jittered_grid(side, seed, drop)
    g.max_walk_m = 12.0  # small, so components and walks matter
    rng = np.random.default_rng(seed)
    if closures and g.n_edges:
        g.close_edges(rng.choice(g.n_edges, size=max(1, g.n_edges // 8), replace=False))
        g.close_nodes(rng.choice(g.n_nodes, size=max(1, g.n_nodes // 10), replace=False))
    points = [tuple(p) for p in rng.uniform(-15.0, side * 10.0 + 5.0, (12, 2)).tolist()]
    _assert_same_as_route(g, points[0], points[1:])
