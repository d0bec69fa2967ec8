"""Sidewalk routing speed: planner.sidewalk vs rustworkx on a 100k-node street grid.

    python bench/sidewalk_bench.py [--side 316] [--queries 50] [--seed 7]

One run builds the same graph (a side x side grid, coordinates jittered by +-3 m on a 10 m
pitch, 10 % of edges removed, Euclidean weights) in both libraries, then times the same random
node pairs (both in the largest component) on each, interleaved. rustworkx gets every single-pair
call it has, on an undirected PyGraph and on a PyDiGraph (both directions), and the fastest of them
at p50 is the peer (marked in the table):
  - `*_dijkstra_shortest_path_lengths(goal=...)` (length only, stops at the goal),
  - `*_dijkstra_shortest_paths(target=...)` (the path),
  - `*_astar_shortest_path` with a Euclidean heuristic (admissible: the weights are the Euclidean
    edge lengths; its goal, cost and heuristic are Python callables, as rustworkx takes them).
Our call returns length and path. Lengths must agree to 1e-9 relative, else the bench exits 1;
timings are printed, never asserted.

A second table is one depot to many drop points (`--fanout 200` targets, 0: skip): `--fanout` x
`route()` against one `routes_from()` (routes) and one `lengths_from()` (lengths only), both a
single scipy Dijkstra plus the snapping and walks of `route()`, and against rustworkx's
single-source calls (all lengths / all paths from the origin's node; node to node, no snapping).
Targets are random nodes of the largest component moved by up to 2 m (so there are walks), the
origin likewise. `--site PATH` runs that table on a site's sidewalks instead: from its first depot
to its first `--fanout` drop points. Every routes_from / lengths_from length must equal route()'s
to 1e-6 m and rustworkx's network lengths to 1e-9 relative, else exit 1.

    python bench/sidewalk_bench.py --skip-pairs --site sitl/worlds/helsinki
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import rustworkx as rx
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.errors import NoRoute
from planner.sidewalk import SidewalkGraph

LENGTH_TOL = 1e-9  # relative

def make_grid(side: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    ij = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
    xy = ij * 10.0 + rng.uniform(-3.0, 3.0, ij.shape)
    idx = np.arange(side * side).reshape(side, side)
    edges = np.concatenate(
        [
            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1),
            np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
        ]
    )
    edges = edges[rng.random(len(edges)) > 0.10].astype(np.int64)
    lengths = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
    return xy, edges, lengths


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1e3


# A rustworkx call: (source, target) -> the path's length, or its node list (length summed by the bench).
PeerCall = Callable[[int, int], "float | list[int]"]


def rustworkx_calls(
    graph: rx.PyGraph, digraph: rx.PyDiGraph, xy: NDArray[np.float64]
) -> list[tuple[str, str, PeerCall]]:
    """(label, which graph, call) for every single-pair shortest-path call rustworkx has."""
    xs, ys = xy[:, 0].tolist(), xy[:, 1].tolist()

    def astar(search: Callable[..., Iterable[int]], g: rx.PyGraph | rx.PyDiGraph) -> PeerCall:
        def call(s: int, t: int) -> list[int]:
            gx, gy = xs[t], ys[t]
            # node payloads are the node indices (add_nodes_from(range(n))), edge payloads the lengths
            return list(search(g, s, lambda n: n == t, float, lambda n: math.hypot(xs[n] - gx, ys[n] - gy)))

        return call

    return [
        ("graph_dijkstra_shortest_path_lengths(goal=)", "graph",
         lambda s, t: rx.graph_dijkstra_shortest_path_lengths(graph, s, float, goal=t)[t]),
        ("dijkstra_shortest_paths(target=)", "graph",
         lambda s, t: list(rx.dijkstra_shortest_paths(graph, s, target=t, weight_fn=float)[t])),
        ("graph_astar_shortest_path (Euclidean h)", "graph", astar(rx.graph_astar_shortest_path, graph)),
        ("digraph_dijkstra_shortest_path_lengths(goal=)", "digraph",
         lambda s, t: rx.digraph_dijkstra_shortest_path_lengths(digraph, s, float, goal=t)[t]),
        ("digraph_dijkstra_shortest_paths(target=)", "digraph",
         lambda s, t: list(rx.digraph_dijkstra_shortest_paths(digraph, s, target=t, weight_fn=float)[t])),
        ("digraph_astar_shortest_path (Euclidean h)", "digraph", astar(rx.digraph_astar_shortest_path, digraph)),
    ]


def rx_graphs(ours: SidewalkGraph) -> tuple[rx.PyGraph, rx.PyDiGraph]:
    us: list[int] = ours.edges[:, 0].tolist()
    vs: list[int] = ours.edges[:, 1].tolist()
    ws: list[float] = ours.lengths.tolist()
    graph = rx.PyGraph(multigraph=False, node_count_hint=ours.n_nodes, edge_count_hint=ours.n_edges)
    graph.add_nodes_from(range(ours.n_nodes))
    graph.add_edges_from(list(zip(us, vs, ws, strict=True)))
    digraph = rx.PyDiGraph(multigraph=False, node_count_hint=ours.n_nodes, edge_count_hint=2 * ours.n_edges)
    digraph.add_nodes_from(range(ours.n_nodes))
    digraph.add_edges_from(list(zip(us + vs, vs + us, ws + ws, strict=True)))
    return graph, digraph


def fanout(
    console: Console, title: str, ours: SidewalkGraph, origin: tuple[float, float],
    targets: list[tuple[float, float]], repeats: int,
) -> bool:
    """One origin to many targets: route() per target vs routes_from / lengths_from vs rustworkx's
    single-source Dijkstra. Prints a table; returns whether every length agreed."""
    graph, digraph = rx_graphs(ours)
    ours.component_of(0)  # the search structure, built lazily, outside the timings

    def each_route() -> list[float]:
        out = []
        for t in targets:
            try:
                out.append(ours.route(origin, t).length_m)
            except NoRoute:
                out.append(math.inf)
        return out

    s_node = ours.snap(origin).node_id
    calls: list[tuple[str, Callable[[], object]]] = [
        (f"planner {len(targets)} x route()", each_route),
        ("planner routes_from() (routes)", lambda: ours.routes_from(origin, targets)),
        ("planner lengths_from() (lengths)", lambda: ours.lengths_from(origin, targets)),
        ("rustworkx graph_dijkstra_shortest_path_lengths (all)",
         lambda: rx.graph_dijkstra_shortest_path_lengths(graph, s_node, float)),
        ("rustworkx digraph_dijkstra_shortest_path_lengths (all)",
         lambda: rx.digraph_dijkstra_shortest_path_lengths(digraph, s_node, float)),
        ("rustworkx dijkstra_shortest_paths (all paths)",
         lambda: rx.dijkstra_shortest_paths(graph, s_node, weight_fn=float)),
        ("rustworkx digraph_dijkstra_shortest_paths (all paths)",
         lambda: rx.digraph_dijkstra_shortest_paths(digraph, s_node, weight_fn=float)),
    ]
    times: dict[str, list[float]] = {label: [] for label, _ in calls}
    answers: dict[str, object] = {}
    for round_ in range(repeats + 1):  # interleaved; the first round warms up and is not counted
        for label, call in calls:
            a = time.perf_counter()
            answers[label] = call()
            if round_:
                times[label].append(time.perf_counter() - a)

    single = np.asarray(answers[calls[0][0]], dtype=np.float64)
    routes = answers[calls[1][0]]
    assert isinstance(routes, list)
    many = np.array([math.inf if r is None else r.length_m for r in routes])
    lengths = np.asarray(answers[calls[2][0]], dtype=np.float64)
    reached = np.isfinite(single)
    same = bool(np.array_equal(reached, np.isfinite(many)) and np.array_equal(reached, np.isfinite(lengths)))
    diff = float(max(np.abs(many[reached] - single[reached]).max(initial=0.0),
                     np.abs(lengths[reached] - single[reached]).max(initial=0.0)))
    same = same and diff <= 1e-6
    rx_lengths = answers[calls[3][0]]
    rx_diff = 0.0
    for r in routes:  # rustworkx's node-to-node lengths vs ours (from the origin's own node only)
        if r is not None and r.node_ids[0] == s_node:
            goal = r.node_ids[-1]
            other = 0.0 if goal == s_node else float(rx_lengths[goal])  # type: ignore[index]
            rx_diff = max(rx_diff, abs(other - r.network_length_m) / max(other, 1e-300))
    same = same and rx_diff <= LENGTH_TOL

    ref = float(np.median(times[calls[0][0]]))
    table = Table(title=f"{title}: one origin, {len(targets)} targets ({int(reached.sum())} reachable), "
                        f"median of {repeats}")
    for col in ("", "ms", "vs route() loop"):
        table.add_column(col, justify="right" if col else "left")
    for label, _ in calls:
        med = float(np.median(times[label]))
        table.add_row(label, f"{med * 1e3:.2f}", f"{med / ref:.3f}x")
    console.print(table)
    best_rx = min((label for label, _ in calls[3:]), key=lambda label: float(np.median(times[label])))
    rx_ms = float(np.median(times[best_rx])) * 1e3
    console.print(
        f"route() loop / fastest rustworkx: {ref * 1e3 / rx_ms:.1f}x; routes_from / fastest rustworkx: "
        f"{float(np.median(times[calls[1][0]])) * 1e3 / rx_ms:.2f}x; lengths_from / fastest rustworkx: "
        f"{float(np.median(times[calls[2][0]])) * 1e3 / rx_ms:.2f}x. "
        f"Lengths agree (1e-6 m with route(), {LENGTH_TOL:g} rel. with rustworkx): "
        f"[{'green' if same else 'red'}]{same}[/] (worst {diff:.1e} m, {rx_diff:.1e} rel.)"
    )
    return same


def grid_fanout(console: Console, ours: SidewalkGraph, members: list[int], n: int, seed: int,
                repeats: int) -> bool:
    rng = np.random.default_rng(seed + 2)
    picks = rng.choice(members, n + 1, replace=False)
    pts = ours.node_xy[picks] + rng.uniform(-2.0, 2.0, (n + 1, 2))
    origin = (float(pts[0, 0]), float(pts[0, 1]))
    targets = [(float(x), float(y)) for x, y in pts[1:].tolist()]
    return fanout(console, f"grid {ours.n_nodes:,} nodes", ours, origin, targets, repeats)


def site_fanout(console: Console, folder: Path, n: int, repeats: int) -> bool:
    from planner.site import load_site

    site = load_site(folder)
    depot = next(iter(site.depots.values()))
    targets = [d.xy_m for d in list(site.drop_points.values())[:n]]
    g = site.sidewalks
    title = f"site {site.name} ({g.n_nodes:,} nodes), depot {depot.name}"
    return fanout(console, title, g, depot.xy_m, targets, repeats)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=316)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fanout", type=int, default=200, help="targets of the one-to-many table (0: skip)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds of the one-to-many table")
    ap.add_argument("--site", type=Path, default=None, help="one-to-many on this site folder, not the grid")
    ap.add_argument("--skip-pairs", action="store_true", help="only the one-to-many table")
    args = ap.parse_args(argv)
    console = Console(width=150)

    if args.site is not None:
        if args.fanout and not site_fanout(console, args.site, args.fanout, args.repeats):
            raise SystemExit(1)
        return

    xy, edges, lengths = make_grid(args.side, args.seed)
    console.print(f"graph: {len(xy):,} nodes, {len(edges):,} edges (seed {args.seed}); rustworkx {version('rustworkx')}")

    t0 = time.perf_counter()
    ours = SidewalkGraph.from_arrays(xy, edges, lengths)
    ours.component_of(0)  # forces the search structure (CSR + components), built lazily
    ours_build_s = time.perf_counter() - t0

    us: list[int] = edges[:, 0].tolist()
    vs: list[int] = edges[:, 1].tolist()
    ws: list[float] = lengths.tolist()
    t0 = time.perf_counter()
    graph = rx.PyGraph(multigraph=False, node_count_hint=len(xy), edge_count_hint=len(edges))
    graph.add_nodes_from(range(len(xy)))
    graph.add_edges_from(list(zip(us, vs, ws, strict=True)))
    build_s = {"graph": time.perf_counter() - t0}
    t0 = time.perf_counter()
    digraph = rx.PyDiGraph(multigraph=False, node_count_hint=len(xy), edge_count_hint=2 * len(edges))
    digraph.add_nodes_from(range(len(xy)))
    digraph.add_edges_from(list(zip(us + vs, vs + us, ws + ws, strict=True)))
    build_s["digraph"] = time.perf_counter() - t0

    # Pairs in the largest component, so every query has an answer in both libraries.
    comp = np.array([ours.component_of(i) for i in range(0, len(xy), max(1, len(xy) // 2000))])
    big = int(np.bincount(comp).argmax())
    members = [i for i in range(len(xy)) if ours.component_of(i) == big]
    if args.skip_pairs:
        if args.fanout and not grid_fanout(console, ours, members, args.fanout, args.seed, args.repeats):
            raise SystemExit(1)
        return
    rng = np.random.default_rng(args.seed + 1)
    pairs = [tuple(int(v) for v in rng.choice(members, 2, replace=False)) for _ in range(args.queries)]
    weight = {(min(u, v), max(u, v)): w for u, v, w in zip(us, vs, ws, strict=True)}

    def length_of(answer: float | list[int]) -> float:
        if isinstance(answer, list):
            return sum(weight[(min(x, y), max(x, y))] for x, y in itertools.pairwise(answer))
        return float(answer)

    peers = rustworkx_calls(graph, digraph, xy)
    s0, t0_ = pairs[0]  # warm-up (imports, caches) outside the timings
    ours.shortest_path(s0, t0_)
    ours.route(xy[s0], xy[t0_])
    for _, _, call in peers:
        call(s0, t0_)

    times: dict[str, list[float]] = {"ours": [], "ours_route": [], **{label: [] for label, _, _ in peers}}
    worst: dict[str, float] = {label: 0.0 for label, _, _ in peers}
    for s, t in pairs:
        a = time.perf_counter()
        mine = ours.shortest_path(s, t)
        b = time.perf_counter()
        ours.route(xy[s], xy[t])
        c = time.perf_counter()
        times["ours"].append(b - a)
        times["ours_route"].append(c - b)
        for label, _, call in peers:
            a = time.perf_counter()
            answer = call(s, t)
            times[label].append(time.perf_counter() - a)
            other = length_of(answer)
            worst[label] = max(worst[label], abs(mine.length_m - other) / max(other, 1e-300))

    best_rx = min((label for label, _, _ in peers), key=lambda label: pct(times[label], 50))
    ref = pct(times[best_rx], 50)
    table = Table(title=f"single-pair shortest path, {len(xy):,} nodes, {args.queries} queries")
    for col in ("", "build ms", "p50 ms", "p95 ms", "p50 vs best rustworkx", "max length diff"):
        table.add_column(col, justify="right" if col else "left")
    rows = [
        ("planner shortest_path (length + path)", "ours", ours_build_s, None),
        ("planner route (snap + walk + path)", "ours_route", ours_build_s, None),
    ] + [(f"rustworkx {label}", label, build_s[which], worst[label]) for label, which, _ in peers]
    for label, key, b_s, diff in rows:
        p50 = pct(times[key], 50)
        table.add_row(
            label + (" [bold]<- peer[/bold]" if key == best_rx else ""),
            f"{b_s * 1e3:.0f}",
            f"{p50:.2f}",
            f"{pct(times[key], 95):.2f}",
            f"{p50 / ref:.2f}x",
            "" if diff is None else f"{diff:.1e}",
        )
    console.print(table)
    worst_rel = max(worst.values())
    same = worst_rel <= LENGTH_TOL
    console.print(
        f"peer = fastest rustworkx call at p50: {best_rx}. "
        f"lengths identical to {LENGTH_TOL:g} relative (every call): [{'green' if same else 'red'}]{same}[/] "
        f"(worst {worst_rel:.1e}); p50 ratio planner / peer = {pct(times['ours'], 50) / ref:.2f}x (target <= 1.0x)"
    )
    if args.fanout:
        same = grid_fanout(console, ours, members, args.fanout, args.seed, args.repeats) and same
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
