"""Drone path planning: `planner.flight.FlightPlanner` side by side with extremitypathfinder.

Both solve the same problem: a 1000 x 1000 m operating area with 200 random, non-overlapping,
10-vertex polygons (2,000 vertices, fixed seed) and 50 random free-space queries. Our planner runs
with buffer_m = 0 here so both see exactly the same obstacles (a site normally adds a buffer).

The peer gets its best: extremitypathfinder with numba (`pip install 'extremitypathfinder[numba]'`,
as its documentation recommends; in the `bench` extra), its JIT warmed on a small map before any
timing (ours is warmed the same way), and preprocessing timed the same way on both sides: the best
of --builds fresh builds each. The version printed is the installed one.

Exits 1 when a path length differs from the peer's by more than LENGTH_TOL (relative) or when the
paths after the incremental updates differ from a rebuild's at all (drift must be exactly 0).
Timings are printed, never asserted.

Run from the repository root: python -m bench.planner_bench [--seed 7] [--queries 50] [--updates 10]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from rich.console import Console
from rich.table import Table

from planner.airspace import Airspace, NoFlyZone
from planner.flight import FlightPlanner

SIZE_M = 1000.0
LENGTH_TOL = 1e-6  # max |ours / theirs - 1| over the queries
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


def best_of(builds: int, build: Callable[[], T]) -> tuple[T, float]:
    """The last of `builds` fresh builds and the fastest build time (s)."""
    best = float("inf")
    value: T | None = None
    for _ in range(builds):
        value, dt = timed(build)
        best = min(best, dt)
    assert value is not None
    return value, best


def peer_version() -> str:
    """extremitypathfinder's installed version, and numba's if it runs with numba."""
    version = importlib.metadata.version("extremitypathfinder")
    if importlib.util.find_spec("numba") is None:
        return f"{version}, no numba"
    return f"{version} + numba {importlib.metadata.version('numba')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--builds", type=int, default=3, help="preprocessing: best of this many builds, each side")
    args = parser.parse_args()
    console = Console(width=130)

    from extremitypathfinder import PolygonEnvironment

    if importlib.util.find_spec("numba") is None:
        console.print(
            "[red]numba is not installed: extremitypathfinder runs as plain Python, far from its best; "
            "pip install 'extremitypathfinder[numba]' (the bench extra does)[/red]"
        )
    polygons = random_map(args.seed)
    queries = random_queries(args.seed, polygons, args.queries)
    area = shapely.box(0.0, 0.0, SIZE_M, SIZE_M)
    zones = [NoFlyZone(f"z{i}", "bench obstacle", shapely.Polygon(p)) for i, p in enumerate(polygons)]
    boundary = [(0.0, 0.0), (SIZE_M, 0.0), (SIZE_M, SIZE_M), (0.0, SIZE_M)]

    def build_ours(zone_list: list[NoFlyZone] = zones) -> FlightPlanner:
        return FlightPlanner(Airspace(area, zone_list, buffer_m=0.0))

    def build_theirs(polys: list[FloatArray] = polygons) -> Any:
        env = PolygonEnvironment()
        env.store(boundary, [[tuple(v) for v in p[::-1]] for p in polys], validate=False)  # holes clockwise
        return env

    # Warm-up, untimed, the same for both: a small map built and queried once (numba compiles its
    # functions on first use or loads them from its cache; we fill our own caches and imports).
    small_polys = random_map(args.seed + 3, count=5)
    small_q = random_queries(args.seed + 3, small_polys, 1)[0]
    small_zones = [NoFlyZone(f"w{i}", "warm-up", shapely.Polygon(p)) for i, p in enumerate(small_polys)]
    build_ours(small_zones).path(*small_q)
    build_theirs(small_polys).find_shortest_path(*small_q)

    version = peer_version()
    console.print(
        f"map: {len(polygons)} polygons, {sum(len(p) for p in polygons)} vertices, "
        f"{args.queries} queries, seed {args.seed}; our buffer_m = 0 (same obstacles for both); "
        f"peer: extremitypathfinder {version}; both warmed up on a small map, preprocessing = best of "
        f"{args.builds} fresh builds each"
    )

    ours, ours_prep_s = best_of(args.builds, build_ours)
    env, theirs_prep_s = best_of(args.builds, build_theirs)

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
    table.add_column(f"extremitypathfinder {version}", justify="right")
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
        f"<= {LENGTH_TOL:g}",
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
    upd.add_row("path drift after updates", f"{drift:.2e} m", "", "", "0 (exact)")
    console.print(upd)

    failures = []
    if worst > LENGTH_TOL:
        failures.append(f"path lengths differ from extremitypathfinder's by up to {worst:.1e} (> {LENGTH_TOL:g})")
    if drift != 0.0:
        failures.append(f"paths after incremental updates differ from a rebuild's by up to {drift:.2e} m")
    for failure in failures:
        console.print(f"[red]FAIL: {failure}[/red]")
    if failures:
        raise SystemExit(1)
    console.print("[green]OK: same path lengths as extremitypathfinder; no drift after updates[/green]")


if __name__ == "__main__":
    main()
