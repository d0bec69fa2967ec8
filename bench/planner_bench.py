"""Drone path planning: `planner.flight.FlightPlanner` side by side with extremitypathfinder.

Both solve the same problem: a 1000 x 1000 m operating area with 200 random, non-overlapping,
10-vertex polygons (2,000 vertices, fixed seed) and 50 random free-space queries. Our planner runs
with buffer_m = 0 here so both see exactly the same obstacles (a site normally adds a buffer).

Run from the repository root: python -m bench.planner_bench [--seed 7] [--queries 50] [--updates 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from rich.console import Console
from rich.table import Table

from planner.airspace import Airspace, NoFlyZone
from planner.flight import FlightPlanner

SIZE_M = 1000.0
FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")


def random_map(seed: int, count: int = 200, vertices: int = 10) -> list[FloatArray]:
    """Star-shaped (so simple) polygons whose bounding circles keep >= 4 m apart."""
    rng = np.random.default_rng(seed)
    polygons: list[FloatArray] = []
    centres: list[FloatArray] = []
    radii: list[float] = []
    while len(polygons) < count:
        radius_m = float(rng.uniform(12.0, 30.0))
        centre = rng.uniform(radius_m + 5.0, SIZE_M - radius_m - 5.0, 2)
        if centres:
            gaps = np.hypot(*(np.array(centres) - centre).T) - np.array(radii)
            if gaps.min() < radius_m + 4.0:
                continue
        angles = np.sort(rng.uniform(0.0, 2 * np.pi, vertices))
        if np.diff(np.r_[angles, angles[0] + 2 * np.pi]).min() < 0.15:
            continue
        reach = rng.uniform(0.45 * radius_m, radius_m, vertices)
        polygons.append(centre + np.column_stack([reach * np.cos(angles), reach * np.sin(angles)]))
        centres.append(centre)
        radii.append(radius_m)
    return polygons


def random_queries(
    seed: int, polygons: list[FloatArray], count: int
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    rng = np.random.default_rng(seed + 1)
    blocked = shapely.union_all([shapely.Polygon(p) for p in polygons]).buffer(0.5)
    shapely.prepare(blocked)
    queries: list[tuple[tuple[float, float], tuple[float, float]]] = []
    while len(queries) < count:
        s, g = rng.uniform(1.0, SIZE_M - 1.0, (2, 2))
        if not blocked.intersects(shapely.Point(s)) and not blocked.intersects(shapely.Point(g)):
            queries.append(((float(s[0]), float(s[1])), (float(g[0]), float(g[1]))))
    return queries


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args()
    console = Console(width=120)

    from extremitypathfinder import PolygonEnvironment

    polygons = random_map(args.seed)
    queries = random_queries(args.seed, polygons, args.queries)
    area = shapely.box(0.0, 0.0, SIZE_M, SIZE_M)
    zones = [NoFlyZone(f"z{i}", "bench obstacle", shapely.Polygon(p)) for i, p in enumerate(polygons)]
    console.print(
        f"map: {len(polygons)} polygons, {sum(len(p) for p in polygons)} vertices, "
        f"{args.queries} queries, seed {args.seed}; our buffer_m = 0 (same obstacles for both); "
        "our preprocessing is the best of 3 builds, theirs one build (it takes ~100x longer)"
    )

    def build_ours() -> FlightPlanner:
        return FlightPlanner(Airspace(area, zones, buffer_m=0.0))

    ours, ours_prep_s = timed(build_ours)
    ours_prep_s = min(ours_prep_s, *(timed(build_ours)[1] for _ in range(2)))

    env = PolygonEnvironment()
    boundary = [(0.0, 0.0), (SIZE_M, 0.0), (SIZE_M, SIZE_M), (0.0, SIZE_M)]
    holes = [[tuple(v) for v in p[::-1]] for p in polygons]  # holes clockwise
    _, theirs_prep_s = timed(lambda: env.store(boundary, holes, validate=False))

    ours_q: list[float] = []
    theirs_q: list[float] = []
    ratios: list[float] = []
    ours.path(*queries[0])  # warm caches of both before timing
    env.find_shortest_path(*queries[0])
    for start, goal in queries:
        mine, dt_ours = timed(lambda s=start, g=goal: ours.path(s, g))  # type: ignore[misc]
        (_, length), dt_theirs = timed(lambda s=start, g=goal: env.find_shortest_path(s, g))  # type: ignore[misc]
        ours_q.append(dt_ours)
        theirs_q.append(dt_theirs)
        if length is None:
            raise SystemExit(f"extremitypathfinder found no path for {start} -> {goal}")
        ratios.append(mine.length_m / length if length > 0 else 1.0)

    # One-zone updates: take a zone out and put it back, incrementally; versus a full rebuild.
    rng = np.random.default_rng(args.seed + 2)
    picks = rng.choice(len(zones), size=min(args.updates, len(zones)), replace=False)
    remove_s: list[float] = []
    add_s: list[float] = []
    for idx in picks:
        zone = zones[int(idx)]
        remove_s.append(timed(lambda z=zone: ours.remove_zone(z.zone_id))[1])  # type: ignore[misc]
        add_s.append(timed(lambda z=zone: ours.add_zone(z))[1])  # type: ignore[misc]
    # After the churn the graph must still give a rebuild's answers.
    rebuilt = build_ours()
    drift = max(abs(ours.path(s, g).length_m - rebuilt.path(s, g).length_m) for s, g in queries)
    extra = NoFlyZone.make_circle("bench-circle", "bench update", 500.0, 500.0, 25.0)
    add_circle_s = timed(lambda: ours.add_zone(extra))[1]
    remove_circle_s = timed(lambda: ours.remove_zone(extra.zone_id))[1]

    nodes, edges = ours.graph_size
    table = Table(title="Drone path planning, 200 polygons / 2,000 vertices (lower is better)")
    table.add_column("measure")
    table.add_column("fleetctl planner", justify="right")
    table.add_column("extremitypathfinder 2.7.2", justify="right")
    table.add_column("ours / theirs", justify="right")
    table.add_column("target", justify="right")
    table.add_row(
        "preprocessing",
        f"{ours_prep_s * 1e3:.0f} ms",
        f"{theirs_prep_s * 1e3:.0f} ms",
        f"{ours_prep_s / theirs_prep_s:.3f}",
        "<= 0.25",
    )
    for label, q in (("query p50", 50.0), ("query p95", 95.0)):
        a, b = pct(ours_q, q), pct(theirs_q, q)
        table.add_row(
            label, f"{a * 1e3:.2f} ms", f"{b * 1e3:.2f} ms", f"{a / b:.3f}", "<= 0.5" if q == 50.0 else ""
        )
    worst = max(abs(r - 1.0) for r in ratios)
    table.add_row(
        "path length ours / theirs",
        f"max {max(ratios):.9f}",
        f"min {min(ratios):.9f}",
        f"max |r - 1| {worst:.1e}",
        "<= 1e-6",
    )
    table.add_row("graph", f"{nodes} nodes / {edges} edges", f"{len(env.graph.nodes)} nodes", "", "")
    console.print(table)

    upd = Table(title="Incremental zone updates vs a full rebuild (ours)")
    upd.add_column("operation")
    upd.add_column("p50", justify="right")
    upd.add_column("max", justify="right")
    upd.add_column("p50 / rebuild", justify="right")
    upd.add_column("target", justify="right")
    upd.add_row("full rebuild (200 zones)", f"{ours_prep_s * 1e3:.1f} ms", "", "1", "")
    for label, values in (
        ("remove one zone", remove_s),
        ("add one zone", add_s),
        ("add 25 m circle at centre", [add_circle_s]),
        ("remove that circle", [remove_circle_s]),
    ):
        p50 = statistics.median(values)
        upd.add_row(
            label, f"{p50 * 1e3:.2f} ms", f"{max(values) * 1e3:.2f} ms", f"{p50 / ours_prep_s:.4f}", "<= 0.05"
        )
    upd.add_row("path drift after updates", f"{drift:.2e} m", "", "", "0")
    console.print(upd)


if __name__ == "__main__":
    main()
