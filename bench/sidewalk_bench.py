"""Sidewalk routing speed: planner.sidewalk vs rustworkx Dijkstra on a 100k-node street grid.

    python bench/sidewalk_bench.py [--side 316] [--queries 50] [--seed 7]

One run builds the same graph (a side x side grid, coordinates jittered by +-3 m on a 10 m
pitch, 10 % of edges removed, Euclidean weights) in both libraries, then times the same random
node pairs (both in the largest component) on each, interleaved. rustworkx gets its fastest
single-pair calls: `graph_dijkstra_shortest_path_lengths(goal=...)` (length only, stops at the
goal) and `dijkstra_shortest_paths(target=...)` (the path); our call returns length and path.
Lengths must agree to 1e-9 relative.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import rustworkx as rx
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.sidewalk import SidewalkGraph


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=316)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    console = Console(width=120)

    xy, edges, lengths = make_grid(args.side, args.seed)
    console.print(f"graph: {len(xy):,} nodes, {len(edges):,} edges (seed {args.seed})")

    t0 = time.perf_counter()
    ours = SidewalkGraph.from_arrays(xy, edges, lengths)
    ours.component_of(0)  # forces the search structure (CSR + components), built lazily
    ours_build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs = rx.PyGraph(multigraph=False, node_count_hint=len(xy), edge_count_hint=len(edges))
    theirs.add_nodes_from(range(len(xy)))
    theirs.add_edges_from(
        list(zip(edges[:, 0].tolist(), edges[:, 1].tolist(), lengths.tolist(), strict=True))
    )
    rx_build_s = time.perf_counter() - t0

    # Pairs in the largest component, so every query has an answer in both libraries.
    comp = np.array([ours.component_of(i) for i in range(0, len(xy), max(1, len(xy) // 2000))])
    big = int(np.bincount(comp).argmax())
    members = [i for i in range(len(xy)) if ours.component_of(i) == big]
    rng = np.random.default_rng(args.seed + 1)
    pairs = [tuple(int(v) for v in rng.choice(members, 2, replace=False)) for _ in range(args.queries)]
    weight = {(min(u, v), max(u, v)): w for (u, v), w in zip(edges.tolist(), lengths.tolist(), strict=True)}

    s0, t0_ = pairs[0]  # warm-up (imports, caches) outside the timings
    ours.shortest_path(s0, t0_)
    rx.graph_dijkstra_shortest_path_lengths(theirs, s0, float, goal=t0_)
    rx.dijkstra_shortest_paths(theirs, s0, target=t0_, weight_fn=float)

    times: dict[str, list[float]] = {"ours": [], "ours_route": [], "rx_len": [], "rx_path": []}
    worst_rel = 0.0
    for s, t in pairs:
        a = time.perf_counter()
        mine = ours.shortest_path(s, t)
        b = time.perf_counter()
        ours.route(xy[s], xy[t])
        c = time.perf_counter()
        rx_len = rx.graph_dijkstra_shortest_path_lengths(theirs, s, float, goal=t)[t]
        d = time.perf_counter()
        rx_nodes = rx.dijkstra_shortest_paths(theirs, s, target=t, weight_fn=float)[t]
        e = time.perf_counter()
        times["ours"].append(b - a)
        times["ours_route"].append(c - b)
        times["rx_len"].append(d - c)
        times["rx_path"].append(e - d)
        rx_path_len = sum(weight[(min(x, y), max(x, y))] for x, y in itertools.pairwise(rx_nodes))
        for other in (rx_len, rx_path_len):
            worst_rel = max(worst_rel, abs(mine.length_m - other) / max(other, 1e-300))

    best_rx = "rx_len" if pct(times["rx_len"], 50) <= pct(times["rx_path"], 50) else "rx_path"
    table = Table(title=f"single-pair shortest path, {len(xy):,} nodes, {args.queries} queries")
    for col in ("", "build ms", "p50 ms", "p95 ms", "p50 vs best rustworkx"):
        table.add_column(col, justify="right" if col else "left")
    rows = [
        ("planner shortest_path (length + path)", "ours", ours_build_s),
        ("planner route (snap + walk + path)", "ours_route", ours_build_s),
        ("rustworkx lengths(goal=)", "rx_len", rx_build_s),
        ("rustworkx dijkstra_shortest_paths(target=)", "rx_path", rx_build_s),
    ]
    ref = pct(times[best_rx], 50)
    for label, key, build_s in rows:
        p50 = pct(times[key], 50)
        table.add_row(
            label, f"{build_s * 1e3:.0f}", f"{p50:.2f}", f"{pct(times[key], 95):.2f}", f"{p50 / ref:.2f}x"
        )
    console.print(table)
    same = worst_rel <= 1e-9
    console.print(
        f"lengths identical to 1e-9 relative: [{'green' if same else 'red'}]{same}[/] (worst {worst_rel:.1e}); "
        f"p50 ratio planner / best rustworkx = {pct(times['ours'], 50) / ref:.2f}x (target <= 1.0x)"
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
