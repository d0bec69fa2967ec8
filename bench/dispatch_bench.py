"""Dispatch: fleetctl's assignment solver against FIFO and a clairvoyant PyVRP plan, in simulation.

Instance: the bundled Helsinki site and its fleet (6 quad-x4 + 4 sidewalk-bot over the two depots,
5 chargers each) and a seeded 2-hour Poisson stream of orders on the site's real drop points (60 %
0.2-2.5 kg, 40 % 2.5-8 kg for robots only; window opening 0-15 min after arrival, 30-90 min long; 10 %
express, 2 % medical), at several loads from light to beyond what the fleet can carry; then the
scaled fleet (60 quads + 40 robots, chargers x10) on 10x the order rate. Trip costs are
`planner.costs.SiteCosts` (flight paths around the zones, sidewalk routes, the energy model).

Peers, in the same run, on the same streams (bench/_dispatch_sim.py, bench/_vrp_bound.py):
  - fleetctl assign: `planner.assign.assign` re-planning every pending order at every event (order in,
    vehicle back, battery full, planned departure due, 30 s tick), launching the due departures;
  - FIFO nearest: the oldest pending order to the nearest available vehicle, what simple systems do;
  - clairvoyant bound: PyVRP (iterated local search, warm-started from a greedy plan) knowing every
    order in advance: heterogeneous multi-trip fleet, release times, windows, optional clients with
    priority-weighted prizes; its on-time count is the reference ("bound"; see _vrp_bound.py for
    what it simplifies, all in its favour but one: it is a heuristic under a time limit).

Reported: on-time count and rate, ratio to the bound (count, and priority-weighted), late deliveries
and lateness p95 over delivered orders, orders dropped (window closed before any vehicle left for
them), trip energy, decision latency p50/p95 (wall time of one decision: inputs, solver, launches).
Separately, assign() latency at 100 vehicles and 500 pending orders. The process is pinned to one
core. Targets (printed, never asserted): on-time >= 0.95 x bound at every load, above FIFO, decision
p95 < 50 ms at 100 vehicles / 500 pending.

Run from the repository root:
    python -m bench.dispatch_bench                          # everything (~6 min on 2 cores)
    python -m bench.dispatch_bench --quick                  # one light load, 30 min of orders
    python -m bench.dispatch_bench --loads 20 40 --no-scale --vrp-seconds 10 --json /tmp/dispatch.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._dispatch_sim import (
    EARLY_S,
    FifoNearest,
    FleetctlAssign,
    FleetMember,
    Order,
    SimResult,
    assign_ready,
    built_fleet,
    generate_orders,
    make_costs,
    percentile,
    simulate,
    site_fleet,
)
from bench._measure import pin, usable_cores
from planner.assign import Costs, MemoCosts, Worker, assign
from planner.site import Site, load_site

SITE_DIR = Path(__file__).resolve().parents[1] / "sitl" / "worlds" / "helsinki"
DEFAULT_LOADS = (10.0, 20.0, 40.0, 80.0)  # orders per hour for the small fleet; the scaled one gets 10x
SCALE = 10
RATIO_TARGET = 0.95
LATENCY_TARGET_MS = 50.0
BOUND = "bound (PyVRP)"


@dataclass
class Row:
    fleet: str
    load_per_h: float
    orders: int
    dispatcher: str
    on_time: int | None = None
    on_time_weighted: int | None = None
    late: int | None = None
    lateness_p95_min: float | None = None
    dropped: int | None = None
    energy_kwh: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    decisions: int | None = None
    max_pending: int | None = None
    refused: int | None = None
    wall_s: float | None = None
    ratio: float | None = None
    ratio_weighted: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return None if self.on_time is None or not self.orders else self.on_time / self.orders


def sim_row(fleet: str, load: float, res: SimResult) -> Row:
    late_p95 = res.lateness_p95_s()
    return Row(fleet, load, res.orders, res.dispatcher, res.on_time, res.on_time_weighted, res.late,
               None if late_p95 is None else late_p95 / 60.0, len(res.dropped), res.energy_wh / 1000.0,
               res.latency_ms(0.5), res.latency_ms(0.95), len(res.latencies_s), res.max_pending, res.refused,
               res.wall_s, note=res.note)


def run_load(console: Console, site: Site, costs: Costs, fleet_name: str, fleet: Sequence[FleetMember],
             chargers: dict[str, int], load: float, orders: list[Order], args: argparse.Namespace) -> list[Row]:
    from bench._vrp_bound import clairvoyant

    depot_xy = {d: site.depots[d].xy_m for d in site.depots}
    rows: list[Row] = []
    if assign_ready():
        res = simulate(fleet, orders, costs, chargers, depot_xy, FleetctlAssign(costs))
        rows.append(sim_row(fleet_name, load, res))
    else:
        rows.append(Row(fleet_name, load, len(orders), FleetctlAssign.name,
                        note="skipped: planner.assign.assign is not implemented yet"))
    rows.append(sim_row(fleet_name, load, simulate(fleet, orders, costs, chargers, depot_xy, FifoNearest())))
    seconds = args.vrp_seconds if fleet_name == "small" else args.vrp_seconds_scale
    if seconds > 0:
        b = clairvoyant(site, fleet, orders, costs, seconds=seconds, seed=args.seed, charging=args.vrp_charging)
        bound = Row(fleet_name, load, len(orders), BOUND, b.on_time, b.on_time_weighted, 0, 0.0,
                    len(orders) - b.on_time, b.energy_wh / 1000.0, wall_s=b.build_s + b.solve_s, note=b.note,
                    extra={"feasible": b.feasible, "greedy_on_time": b.greedy_on_time,
                           "greedy_weighted": b.greedy_weighted, "solve_s": b.solve_s, "gamma": b.gamma})
        if not b.feasible:
            bound.on_time = bound.on_time_weighted = bound.dropped = None
        rows.append(bound)
        if bound.on_time:
            for r in rows:
                if r.on_time is not None and bound.on_time_weighted:
                    r.ratio = r.on_time / bound.on_time
                    r.ratio_weighted = (r.on_time_weighted or 0) / bound.on_time_weighted
    done = ", ".join(f"{r.dispatcher} {r.wall_s:.1f} s" for r in rows if r.wall_s is not None)
    console.print(f"  {fleet_name} fleet, {load:g} orders/h: {len(orders)} orders ({done})")
    return rows


def latency_at_scale(site: Site, costs: Costs, fleet: Sequence[FleetMember], chargers: dict[str, int], *,
                     pending: int, reps: int, seed: int) -> dict[str, Any]:
    """assign() on `len(fleet)` vehicles (about half out, due back within 30 min; batteries between
    40 and 100 %; some on chargers) and `pending` orders, `reps` times with the trip costs remembered
    (as the dispatcher keeps them across rounds); the first, cold call is reported apart."""
    rng = np.random.default_rng([seed, 500])
    orders: list[Order] = []
    rate = 2.0 * pending
    while len(orders) < pending:
        orders = generate_orders(site, costs, rate_per_h=rate, hours=0.75, seed=seed, prefix="lat")
        rate *= 1.5
    orders = orders[:pending]
    now = max(o.arrival_s for o in orders)
    jobs = [o.job() for o in orders]
    on_charger = dict(chargers)
    workers = []
    for m in fleet:
        busy = bool(rng.random() < 0.5)
        battery = float(rng.uniform(0.4, 1.0)) * m.model.battery_wh
        charging = not busy and battery < m.model.battery_wh and on_charger[m.depot] > 0
        if charging:
            on_charger[m.depot] -= 1
        ready = now + float(rng.uniform(0.0, 1800.0)) if busy else now
        workers.append(Worker(m.vehicle_id, m.model, m.depot, ready, battery, charging))
    memo = MemoCosts(costs)
    t0 = time.perf_counter()
    first = assign(jobs, workers, memo, now, chargers=chargers, early_s=EARLY_S)
    cold_s = time.perf_counter() - t0
    for _ in range(3):  # warm-up, untimed (allocator, caches)
        assign(jobs, workers, memo, now, chargers=chargers, early_s=EARLY_S)
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        decision = assign(jobs, workers, memo, now, chargers=chargers, early_s=EARLY_S)
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
    assert len(decision.assignments) == len(first.assignments)
    return {"vehicles": len(fleet), "pending": len(jobs), "reps": reps, "cold_ms": 1e3 * cold_s,
            "p50_ms": 1e3 * (percentile(times, 0.5) or 0.0), "p95_ms": 1e3 * (percentile(times, 0.95) or 0.0),
            "max_ms": 1e3 * max(times), "cpu_p50_ms": 1e3 * (percentile(cpu, 0.5) or 0.0),
            "cpu_p95_ms": 1e3 * (percentile(cpu, 0.95) or 0.0), "placed": len(decision.assignments),
            "on_time_planned": sum(a.on_time for a in decision.assignments)}


def _f(value: float | None, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def results_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for name, justify in (("fleet", "left"), ("load /h", "right"), ("orders", "right"), ("dispatcher", "left"),
                          ("on time", "right"), ("rate", "right"), ("÷ bound", "right"), ("w. ÷ bound", "right"),
                          ("late", "right"), ("late p95 min", "right"), ("dropped", "right"),
                          ("energy kWh", "right"), ("dec. p50 ms", "right"), ("dec. p95 ms", "right"),
                          ("pending max", "right")):
        table.add_column(name, justify=justify, no_wrap=name == "dispatcher")  # type: ignore[arg-type]
    last = None
    for r in rows:
        if last is not None and (r.fleet, r.load_per_h) != last:
            table.add_section()
        last = (r.fleet, r.load_per_h)
        if r.on_time is None:
            table.add_row(r.fleet, f"{r.load_per_h:g}", str(r.orders), r.dispatcher, r.note or "—",
                          *["—"] * 10)
            continue
        table.add_row(r.fleet, f"{r.load_per_h:g}", str(r.orders), r.dispatcher, str(r.on_time), _f(r.rate, ".3f"),
                      _f(r.ratio, ".3f"), _f(r.ratio_weighted, ".3f"), _f(r.late, "d"), _f(r.lateness_p95_min, ".1f"),
                      _f(r.dropped, "d"), _f(r.energy_kwh, ".2f"), _f(r.latency_p50_ms, ".2f"),
                      _f(r.latency_p95_ms, ".2f"), _f(r.max_pending, "d"))
    return table


def verdicts(rows: list[Row], latency: dict[str, Any] | None) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    groups: dict[tuple[str, float], dict[str, Row]] = {}
    for r in rows:
        groups.setdefault((r.fleet, r.load_per_h), {})[r.dispatcher] = r
    for (fleet, load), by in groups.items():
        ours = by.get(FleetctlAssign.name)
        fifo = by.get(FifoNearest.name)
        if ours is None or ours.on_time is None:
            continue
        if ours.ratio is not None:
            out.append((ours.ratio >= RATIO_TARGET,
                        f"{fleet} {load:g}/h: on time {ours.ratio:.3f} x bound (target >= {RATIO_TARGET})"))
        if fifo is not None and fifo.on_time is not None:
            saturated = fifo.on_time < fifo.orders
            ok = ours.on_time > fifo.on_time if saturated else ours.on_time >= fifo.on_time
            out.append((ok, f"{fleet} {load:g}/h: {ours.on_time} on time vs FIFO {fifo.on_time}"
                            + ("" if saturated else " (FIFO delivers every order on time)")))
    if latency is not None:
        out.append((latency["p95_ms"] < LATENCY_TARGET_MS,
                    f"assign() p95 {latency['p95_ms']:.1f} ms at {latency['vehicles']} vehicles / "
                    f"{latency['pending']} pending (target < {LATENCY_TARGET_MS:g} ms)"))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dispatch_bench", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--seed", type=int, default=1, help="order streams and PyVRP (default 1)")
    p.add_argument("--loads", type=float, nargs="+", default=None,
                   help=f"orders/h for the small fleet (default {' '.join(f'{x:g}' for x in DEFAULT_LOADS)}); "
                        f"the scaled fleet gets {SCALE}x")
    p.add_argument("--hours", type=float, default=None, help="length of the order stream (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="a small fast run: one load (20/h), 30 min of orders, 2 s of PyVRP, no scaled fleet")
    p.add_argument("--vrp-seconds", type=float, default=None, help="PyVRP time limit per small instance (default 20; "
                                                                    "0 skips the bound)")
    p.add_argument("--vrp-seconds-scale", type=float, default=60.0,
                   help="PyVRP time limit per scaled instance (default 60; 0 skips the bound there)")
    p.add_argument("--vrp-charging", choices=("discounted", "none"), default="discounted",
                   help="charging time in the bound's trips (see bench/_vrp_bound.py; default discounted)")
    p.add_argument("--scale", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the 60 quads + 40 robots fleet on 10x the rate (default on, off with --quick)")
    p.add_argument("--latency-reps", type=int, default=None, help="assign() calls at 100 vehicles / 500 pending "
                                                                  "(default 50)")
    p.add_argument("--core", type=int, default=None, help="pin to this core (default: the last usable one)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    args.loads = args.loads or ([20.0] if args.quick else list(DEFAULT_LOADS))
    args.hours = args.hours or (0.5 if args.quick else 2.0)
    args.vrp_seconds = args.vrp_seconds if args.vrp_seconds is not None else (2.0 if args.quick else 20.0)
    args.scale = args.scale if args.scale is not None else not args.quick
    args.latency_reps = args.latency_reps or (5 if args.quick else 50)

    began = time.perf_counter()
    console = Console(width=180)
    cores = usable_cores()
    core = args.core if args.core is not None else (cores[-1] if cores else None)
    pinned = False if args.no_pin else pin(0, core)
    site = load_site(SITE_DIR)
    t0 = time.perf_counter()
    costs = make_costs(site)
    warm_s = time.perf_counter() - t0
    small = site_fleet(site)
    small_chargers = {d: site.depots[d].chargers for d in site.depots}
    scaled = built_fleet(site, 6 * SCALE, 4 * SCALE)
    scaled_chargers = {d: n * SCALE for d, n in small_chargers.items()}
    ready = assign_ready()
    console.print(
        f"site {site.name}: {len(site.depots)} depots, {len(site.drop_points)} drop points; small fleet "
        f"{len(small)} vehicles, chargers {small_chargers}; scaled fleet {len(scaled)} vehicles, chargers "
        f"{scaled_chargers}; costs planner.costs.SiteCosts, warmed in {warm_s:.1f} s; seed {args.seed}, "
        f"{args.hours:g} h of orders; PyVRP {importlib.metadata.version('pyvrp')}, {args.vrp_seconds:g} s "
        f"(scaled {args.vrp_seconds_scale:g} s), charging {args.vrp_charging}; "
        + (f"pinned to core {core}" if pinned else "not pinned"))
    if not ready:
        console.print("[yellow]planner.assign.assign raises NotImplementedError: the fleetctl rows are "
                      "skipped[/yellow]")

    rows: list[Row] = []
    runs: list[tuple[str, Sequence[FleetMember], dict[str, int], float]] = [
        ("small", small, small_chargers, load) for load in args.loads]
    if args.scale:
        runs += [("scaled", scaled, scaled_chargers, load * SCALE) for load in args.loads]
    for fleet_name, fleet, chargers, load in runs:
        orders = generate_orders(site, costs, rate_per_h=load, hours=args.hours, seed=args.seed,
                                 prefix=f"{fleet_name[:2]}{load:g}-")
        rows += run_load(console, site, costs, fleet_name, fleet, chargers, load, orders, args)

    latency = None
    if ready:
        latency = latency_at_scale(site, costs, scaled, scaled_chargers, pending=500, reps=args.latency_reps,
                                   seed=args.seed)

    console.print(results_table(rows, f"Dispatch over {args.hours:g} h of orders (seed {args.seed}); bound = "
                                      "clairvoyant PyVRP plan; rates and ratios by count, w. = priority-weighted"))
    console.print("late p95: lateness over delivered orders (0 when on time); dropped: the window closed before "
                  "any vehicle left (bound: not in its plan); dec.: wall time of one decision in the simulation")
    if latency is not None:
        lat = Table(title="assign() latency, one core")
        for name in ("vehicles", "pending", "calls", "cold (1st) ms", "p50 ms", "p95 ms", "max ms", "CPU p95 ms",
                     "target p95"):
            lat.add_column(name, justify="right")
        lat.add_row(str(latency["vehicles"]), str(latency["pending"]), str(latency["reps"]),
                    f"{latency['cold_ms']:.1f}", f"{latency['p50_ms']:.1f}", f"{latency['p95_ms']:.1f}",
                    f"{latency['max_ms']:.1f}", f"{latency['cpu_p95_ms']:.1f}", f"< {LATENCY_TARGET_MS:g} ms")
        console.print(lat)
    for ok, text in verdicts(rows, latency):
        console.print(("[green]OK  [/green] " if ok else "[red]MISS[/red] ") + text)
    runtime = time.perf_counter() - began
    console.print(f"whole bench: {runtime:.0f} s" + ("" if pinned else " (not pinned)")
                  + f"; {os.cpu_count()} cores on this machine, shared with other work: compare columns of one run")
    if args.json is not None:
        payload = {
            "seed": args.seed, "hours": args.hours, "loads": args.loads, "scale": args.scale,
            "vrp_seconds": args.vrp_seconds, "vrp_seconds_scale": args.vrp_seconds_scale,
            "vrp_charging": args.vrp_charging, "pinned_core": core if pinned else None,
            "assign_ready": ready, "runtime_s": runtime,
            "rows": [{**asdict(r), "rate": r.rate} for r in rows], "latency": latency,
        }
        args.json.write_text(json.dumps(payload, indent=2))
        console.print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
