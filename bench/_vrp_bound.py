"""The clairvoyant peer of bench/dispatch_bench.py: a PyVRP plan that knows every order in advance.

Model (PyVRP >= 0.14, integer seconds from the start of the stream):
- one location per order (an order's trip cost depends on its weight, so orders do not share one) and
  per depot;
- one routing profile per vehicle kind; edges only between a depot and an order: out = the trip's
  `outbound_s` (arrival over the drop-off), back = `round_trip_s - outbound_s` plus the charging the
  trip costs (below); the edge "distance" is the trip's energy in 0.1 Wh (so among plans with the
  same prizes the solver prefers the least energy). An order a kind cannot serve from a depot (kind,
  weight, reach) has no edge: PyVRP's missing value, which no feasible plan uses;
- one vehicle type per (kind, depot) with that many vehicles, capacity 1 parcel, reloading at its own
  depot as often as it likes: each trip is one delivery, a vehicle makes many trips (multi-trip);
- each order an optional client (`required=False`) with a prize of its priority weight x PRIZE_UNIT,
  release time = its arrival (a trip cannot leave before the orders on it exist), time window =
  [earliest - EARLY_S, latest] on the arrival over the drop-off. A served client is on time by
  construction, so maximising prizes maximises weighted on-time deliveries; the bound is the count.

Simplifications (the plan is optimistic where it matters; it is a reference, not a proof):
- charging: a trip is followed by charging its energy at the charger's full (constant-current) power,
  scaled by a factor gamma per vehicle kind chosen so that a vehicle flying flat out over the whole
  horizon gets exactly the flying time its pack (full at the start, down to the reserve) plus charging
  in every minute on the ground allow: gamma = max(0, (H / F_max - 1) / (P_fly / P_charge)) with
  F_max = (S + P_charge * H) / (P_fly + P_charge). The taper above 80 % is ignored, chargers are
  unlimited, and a vehicle never runs short mid-stream (each trip fits a full pack: the costs say
  so). `charging="none"` drops the charging time altogether (a looser, simpler relaxation);
- no deconfliction, no pads: any number of vehicles take off at once;
- the solver is a heuristic with a time limit: the figure is the best plan it found, warm-started
  from the better of two greedy list schedules of the same model (deadline order, and deadline order
  with planner.assign's priority lead), so never below that; when the greedy plan already serves
  every order on time there is nothing to search for and PyVRP is not run.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench._dispatch_sim import EARLY_S, FleetMember, Order, models_by_kind
from planner.assign import PRIORITY_LEAD_S, Costs, TripCost
from planner.site import Site

PRIZE_UNIT = 1_000_000  # per priority weight; a trip's energy (0.1 Wh) is < 10,000
ENERGY_UNIT_WH = 0.1
#: Distance and duration of an edge that does not exist (client to client, a kind that cannot serve an
#: order): large against any trip (and a day), small enough to keep PyVRP's penalties well scaled.
MISSING = 200_000


@dataclass
class BoundResult:
    orders: int
    on_time: int = 0
    on_time_weighted: int = 0
    energy_wh: float = 0.0
    feasible: bool = False
    greedy_on_time: int = 0
    greedy_weighted: int = 0
    solve_s: float = 0.0
    build_s: float = 0.0
    gamma: dict[str, float] = field(default_factory=dict)
    note: str = ""


def charge_gamma(model_battery_wh: float, reserve_fraction: float, charge_power_w: float, fly_power_w: float,
                 horizon_s: float) -> float:
    """The factor on per-trip charging time (see the module docstring)."""
    if fly_power_w <= 0 or horizon_s <= 0:
        return 0.0
    stock_wh = model_battery_wh * (1.0 - reserve_fraction)
    h = horizon_s / 3600.0
    f_max = (stock_wh + charge_power_w * h) / (fly_power_w + charge_power_w)
    if f_max >= h:
        return 0.0
    return (h / f_max - 1.0) / (fly_power_w / charge_power_w)


def clairvoyant(site: Site, fleet: Sequence[FleetMember], orders: Sequence[Order], costs: Costs, *,
                seconds: float, seed: int = 1, charging: str = "discounted",
                via_depot: bool = True) -> BoundResult:
    """The clairvoyant plan's on-time deliveries (see the module docstring)."""
    import pyvrp
    from pyvrp import Activity, ActivityType, ProblemData, Route, Solution
    from pyvrp.stop import MaxRuntime

    began = time.perf_counter()
    res = BoundResult(len(orders))
    if not orders:
        res.feasible = True
        return res
    models = models_by_kind(site)
    depots = sorted(site.depots)
    kinds = sorted({m.model.kind for m in fleet})
    jobs = [o.job() for o in orders]
    trips: dict[tuple[str, str, int], TripCost] = {}
    for kind in kinds:
        for d in depots:
            for i, job in enumerate(jobs):
                if kind in job.kinds and (tc := costs.trip(models[kind], d, job)) is not None:
                    trips[kind, d, i] = tc
    horizon = max(o.latest_s for o in orders)
    for kind in kinds:
        m = models[kind]
        mine = [tc for (k, _, _), tc in trips.items() if k == kind]
        fly_w = 3600.0 * sum(tc.energy_wh for tc in mine) / max(1e-9, sum(tc.round_trip_s for tc in mine))
        res.gamma[kind] = (0.0 if charging == "none" else
                           charge_gamma(m.battery_wh, m.reserve_fraction, m.charge_power_w, fly_w, horizon))

    def back_s(kind: str, tc: TripCost) -> int:
        charge = res.gamma[kind] * 3600.0 * tc.energy_wh / models[kind].charge_power_w
        return math.ceil(tc.round_trip_s - tc.outbound_s + charge)

    # Locations: the depots, then one per order. One profile per vehicle type (kind, depot): the
    # client-to-client edges go through that type's depot.
    n_dep, n = len(depots), len(orders)
    size = n_dep + n
    locations = [pyvrp.Location(*site.depots[d].xy_m, name=d) for d in depots]
    locations += [pyvrp.Location(*o.xy_m, name=o.order_id) for o in orders]
    vrp_depots = [pyvrp.Depot(k, name=d) for k, d in enumerate(depots)]
    clients = [pyvrp.Client(n_dep + i, delivery=[1], tw_early=max(0, math.ceil(o.earliest_s - EARLY_S)),
                            tw_late=math.floor(o.latest_s), release_time=math.ceil(o.arrival_s),
                            prize=o.priority.weight * PRIZE_UNIT, required=False, name=o.order_id)
               for i, o in enumerate(orders)]
    types: list[tuple[str, str, int]] = []  # (kind, depot, vehicles)
    vehicle_types = []
    distances: list[np.ndarray] = []
    durations: list[np.ndarray] = []
    for kind in kinds:
        for k, d in enumerate(depots):
            count = sum(1 for m in fleet if m.model.kind == kind and m.depot == d)
            if not count:
                continue
            dist = np.full((size, size), MISSING, dtype=np.int64)
            dur = np.full((size, size), MISSING, dtype=np.int64)
            np.fill_diagonal(dist, 0)
            np.fill_diagonal(dur, 0)
            served = [(i, tc) for i in range(n) if (tc := trips.get((kind, d, i))) is not None]
            if served:
                idx = np.array([n_dep + i for i, _ in served])
                out = np.array([math.ceil(tc.outbound_s) for _, tc in served], dtype=np.int64)
                back = np.array([back_s(kind, tc) for _, tc in served], dtype=np.int64)
                energy = np.array([round(tc.energy_wh / ENERGY_UNIT_WH) for _, tc in served], dtype=np.int64)
                dist[k, idx] = energy
                dur[k, idx] = out
                dist[idx, k] = 0
                dur[idx, k] = back
                if via_depot:
                    # What a reload in between costs: PyVRP's neighbourhoods (built from these matrices)
                    # then see which orders chain well; capacity 1 still makes the reload necessary.
                    block = np.ix_(idx, idx)
                    dist[block] = energy[None, :]
                    dur[block] = back[:, None] + out[None, :]
                    dist[idx, idx] = 0
                    dur[idx, idx] = 0
            distances.append(dist)
            durations.append(dur)
            vehicle_types.append(pyvrp.VehicleType(count, capacity=[1], start_depot=k, end_depot=k,
                                                   reload_depots=[k], profile=len(types),
                                                   name=f"{kind}@{d}"))
            types.append((kind, d, count))
    data = ProblemData(locations, clients, vrp_depots, vehicle_types, distances, durations)

    # Warm start: list scheduling, each order to the vehicle that is back soonest after it, in deadline
    # order and in deadline order with priority lead (as planner.assign orders jobs); the better plan.
    def greedy(order_key: Callable[[Order], tuple[float, float]]) -> list[list[list[int]]]:
        free: list[list[float]] = [[0.0] * c for _, _, c in types]
        plans: list[list[list[int]]] = [[[] for _ in range(c)] for _, _, c in types]
        for i in sorted(range(n), key=lambda i: order_key(orders[i])):
            c = clients[i]
            best: tuple[float, int, int] | None = None
            for t, (kind, d, count) in enumerate(types):
                tc = trips.get((kind, d, i))
                if tc is None:
                    continue
                out_s = math.ceil(tc.outbound_s)
                for v in range(count):
                    depart = max(free[t][v], c.release_time, c.tw_early - out_s)
                    if depart + out_s <= c.tw_late:
                        end_s = depart + out_s + back_s(kind, tc)
                        if best is None or end_s < best[0]:
                            best = (end_s, t, v)
            if best is not None:
                end_s, t, v = best
                free[t][v] = end_s
                plans[t][v].append(i)
        return plans

    def worth(plans: list[list[list[int]]]) -> tuple[int, int]:
        served = [i for per_vehicle in plans for visits in per_vehicle for i in visits]
        return sum(orders[i].priority.weight for i in served), len(served)

    plans = max((greedy(lambda o: (o.latest_s, o.arrival_s)),
                 greedy(lambda o: (o.latest_s - PRIORITY_LEAD_S * (o.priority.weight - 1), o.earliest_s))),
                key=worth)
    routes = []
    for t, per_vehicle in enumerate(plans):
        k = depots.index(types[t][1])
        for visits in per_vehicle:
            if visits:
                acts: list[Activity] = []
                for j, i in enumerate(visits):
                    if j:
                        acts.append(Activity(ActivityType.DEPOT, k))
                    acts.append(Activity(ActivityType.CLIENT, i))
                routes.append(Route(data, acts, t))
    initial: Solution | None = Solution(data, routes)
    assert initial is not None
    if initial.is_feasible():
        res.greedy_on_time = initial.num_clients()
        res.greedy_weighted = worth(plans)[0]
    else:
        res.note = "greedy warm start infeasible (not used)"
        initial = None
    res.build_s = time.perf_counter() - began
    if initial is not None and res.greedy_on_time == n:
        best_sol = initial  # every order on time already: nothing to search for
        res.note = "greedy plan serves every order on time (no search)"
    else:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PenaltyBoundWarning: penalties are bounded by the prizes here
            result = pyvrp.solve(data, MaxRuntime(seconds), seed=seed, collect_stats=False, display=False,
                                 initial_solution=initial)
        res.solve_s = time.perf_counter() - t0
        best_sol = result.best
    res.feasible = bool(best_sol.is_feasible())
    if not res.feasible:
        res.note = (res.note + "; " if res.note else "") + "PyVRP found no feasible plan in the time limit"
        return res
    for route in best_sol.routes():
        kind, d, _ = types[route.vehicle_type()]
        trip_start = 0
        for act in route.schedule():
            if act.is_depot():
                trip_start = act.end_time
                continue
            o = orders[act.idx]
            # A feasible plan: on time, and no trip leaves before its order exists.
            assert act.start_time <= o.latest_s + 1, (o.order_id, act.start_time, o.latest_s)
            assert trip_start + 1 >= o.arrival_s, (o.order_id, trip_start, o.arrival_s)
            res.on_time += 1
            res.on_time_weighted += o.priority.weight
            res.energy_wh += trips[kind, d, act.idx].energy_wh
    return res
