"""Who delivers what, and when: the dispatch solver. Pure: no I/O, no clock, no asyncio.

Given the pending orders (`Job`), the vehicles with the time and charge at which each is next free at
its depot (`Worker`), the trip costs (`Costs`) and the chargers per depot, `assign` returns a plan: for
every job it can place, the vehicle, the departure, the predicted delivery time and the charging
before it. The caller (fleetctl's dispatcher) launches only the assignments of vehicles that are free
now and whose departure has come; the rest is the forecast it publishes as ETAs, re-planned at the
next event (rolling horizon).

Objective, in this order: the most on-time deliveries weighted by priority (a medical order outweighs
any number of standard ones), then the least lateness, then the least energy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from planner.charging import charged_wh, time_to_array, time_to_s
from planner.vehicle_model import VehicleModel


@dataclass(frozen=True, slots=True)
class TripCost:
    """One sortie: from the depot to the drop-off with the parcel, the hand-over, back empty."""

    outbound_s: float  # take-off (or departure) to arrival over the drop-off
    round_trip_s: float  # departure to back on the ground at the depot
    energy_wh: float  # the whole round trip, at the job's payload
    cruise_alt_m: float | None = None  # drones: the layer the cost was computed at


class Costs(Protocol):
    """Trip costs by vehicle model, depot and job; None when that vehicle model cannot make the trip
    at all (kind, payload, reach, zones). Implementations cache: the solver asks many times."""

    def trip(self, model: VehicleModel, depot: str, job: Job) -> TripCost | None: ...


@dataclass(frozen=True, slots=True)
class Job:
    """A pending order as the solver sees it. Times are seconds on one clock (e.g. epoch)."""

    order_id: str
    kinds: frozenset[str]  # vehicle kinds that can serve its drop-off ("drone", "robot")
    depot: str | None  # the pickup depot, None: any depot
    drop: str  # a key for the drop-off (drop point name, or "xy:E,N" for a coordinate)
    dropoff_xy_m: tuple[float, float]
    weight_kg: float
    priority_weight: int  # standard 1, express 3, medical 10 (orders.model.Priority.weight)
    earliest_s: float  # delivery window
    latest_s: float
    pinned_vehicle: str | None = None  # an operator's pin: only this vehicle may take it


@dataclass(frozen=True, slots=True)
class Worker:
    """A vehicle as the solver sees it: where and when it is next free, and with how much charge."""

    vehicle_id: str
    model: VehicleModel
    depot: str
    ready_s: float  # when it is next on the ground at `depot` and free (now, if it is)
    battery_wh: float  # in the pack at `ready_s`
    on_charger: bool = False  # already holds one of the depot's chargers at `ready_s`


@dataclass(frozen=True, slots=True)
class Assignment:
    order_id: str
    vehicle_id: str
    depot: str
    charge_from_s: float  # on a charger from here ...
    depart_s: float  # ... to here (equal when no charge is needed)
    arrive_s: float  # over the drop-off
    back_s: float  # on the ground at the depot again
    energy_wh: float
    battery_at_depart_wh: float
    lateness_s: float  # 0 when on time
    priority_weight: int
    cruise_alt_m: float | None = None

    @property
    def on_time(self) -> bool:
        return self.lateness_s <= 0.0


@dataclass(slots=True)
class Decision:
    """The solver's plan. `assignments` in departure order; `unplaced` maps an order id to why it has
    no vehicle in this plan (e.g. "no vehicle can reach it", "too heavy for the free vehicles",
    "would be late": a job the solver leaves for later rather than deliver late while it may still be
    placed on time after re-planning)."""

    assignments: list[Assignment] = field(default_factory=list)
    unplaced: dict[str, str] = field(default_factory=dict)

    def by_order(self) -> dict[str, Assignment]:
        return {a.order_id: a for a in self.assignments}

    @property
    def weighted_on_time(self) -> int:
        return sum(a.priority_weight for a in self.assignments if a.on_time)


class MemoCosts:
    """Remembers `costs.trip` per (model, depot, order, weight): a dispatcher re-plans the same
    pending orders on every event, and pricing a drone trip at a payload is not free. Keep one
    across rounds; `forget` an order once it leaves the pending set, `clear` when zones change."""

    def __init__(self, costs: Costs) -> None:
        self._costs = costs
        self._memo: dict[tuple[str, str, str, str, float], TripCost | None] = {}

    def trip(self, model: VehicleModel, depot: str, job: Job) -> TripCost | None:
        key = (model.name, depot, job.order_id, job.drop, job.weight_kg)
        try:
            return self._memo[key]
        except KeyError:
            cost = self._memo[key] = self._costs.trip(model, depot, job)
            return cost

    def forget(self, order_ids: set[str]) -> None:
        self._memo = {k: v for k, v in self._memo.items() if k[2] not in order_ids}

    def clear(self) -> None:
        self._memo.clear()


def job_order(job: Job) -> tuple[float, float]:
    """The order jobs are placed in: earliest deadline first, a higher priority counting as a deadline
    `PRIORITY_LEAD_S` per weight step sooner (so a medical order goes before standard ones due up to
    about two hours after it, and a plan never delays it for them)."""
    return (job.latest_s - PRIORITY_LEAD_S * (job.priority_weight - 1), job.earliest_s)


#: How much sooner a deadline counts per step of priority weight (see `job_order`).
PRIORITY_LEAD_S = 900.0
#: An idle wait shorter than this (seconds) is not worth filling with another trip.
GAP_MIN_S = 120.0
#: A worker class: the vehicles of one model at one depot share every trip cost.
_Class = tuple[str, str]


def assign(jobs: Sequence[Job], workers: Sequence[Worker], costs: Costs, now_s: float, *,
           chargers: Mapping[str, int], early_s: float = 60.0, allow_late: bool = True) -> Decision:
    """Plan every job onto the workers (see the module docstring). `early_s`: a delivery may arrive
    at most this long before its window opens (the vehicle waits at the depot otherwise).
    `allow_late`: place jobs that cannot be on time after all on-time ones (least lateness first);
    otherwise leave them unplaced.

    The method: list scheduling in deadline order (`job_order`). Each job goes to the vehicle that
    can deliver it on time and is free again soonest (the least fleet time used, so a drone is not
    spent on what a robot delivers on time too, nor the other way round). A trip first goes into a
    wait the vehicle already has before a later window, if it is back in time (idle time costs
    nothing); otherwise the vehicle's timeline grows at its end, charging first on one of its
    depot's chargers when the trip needs more than its pack holds then. Jobs no vehicle delivers on
    time are placed afterwards, least late first. One job is a few rows of numpy operations over the
    fleet and its waits: 500 jobs on 100 vehicles in ~30 ms (bench/dispatch_bench.py)."""
    decision = Decision()
    if not jobs:
        return decision
    if not workers:  # (nothing heard yet after a start, or all grounded)
        decision.unplaced = {job.order_id: "no vehicle available" for job in jobs}
        return decision
    with np.errstate(invalid="ignore"):  # NaN marks a trip a class cannot make: comparisons say False
        return _solve(jobs, workers, costs, now_s, chargers, early_s, allow_late)


def _solve(jobs: Sequence[Job], workers: Sequence[Worker], costs: Costs, now_s: float, chargers: Mapping[str, int],
           early_s: float, allow_late: bool) -> Decision:
    rows = _Rows(jobs, _Fleet(workers, chargers, now_s), costs)
    # Latest departure that still delivers on time, by the fastest class: the least slack first.
    with np.errstate(all="ignore"):
        fastest_s = np.nanmin(np.where(np.isnan(rows.out_s), np.inf, rows.out_s), axis=1)
    orders: list[Callable[[int], tuple[float, ...]]] = [lambda i: job_order(jobs[i])]
    if len(jobs) * len(workers) <= MULTI_START_CELLS:
        orders += [
            lambda i: (jobs[i].latest_s - fastest_s[i] - PRIORITY_LEAD_S * (jobs[i].priority_weight - 1),),
            lambda i: (-jobs[i].priority_weight, jobs[i].earliest_s, jobs[i].latest_s),
        ]
    best: Decision | None = None
    for order in orders:
        decision = _greedy(jobs, workers, rows, now_s, chargers, early_s, allow_late, order)
        if best is None or _score(decision) > _score(best):
            best = decision
    assert best is not None
    return best


#: Below this many (job, vehicle) pairs the solver tries several job orders and keeps the best plan
#: (small fleets decide in a millisecond; a large one spends its budget on one pass).
MULTI_START_CELLS = 20_000


def _score(decision: Decision) -> tuple[float, float, float, float]:
    """Higher is better: weighted on time, then fewer placed late, then less lateness, less energy."""
    late = [a.lateness_s for a in decision.assignments if not a.on_time]
    return (decision.weighted_on_time, len(decision.assignments) - len(late), -sum(late),
            -sum(a.energy_wh for a in decision.assignments))


def _greedy(jobs: Sequence[Job], workers: Sequence[Worker], rows: _Rows, now_s: float, chargers: Mapping[str, int],
            early_s: float, allow_late: bool, order: Callable[[int], tuple[float, ...]]) -> Decision:
    decision = Decision()
    fleet = _Fleet(workers, chargers, now_s)
    late: list[int] = []
    for j in sorted(range(len(jobs)), key=order):
        why = rows.why_not(j)
        if why is not None:
            decision.unplaced[jobs[j].order_id] = why
            continue
        option = fleet.best(rows, j, jobs[j], early_s, on_time_only=True)
        if option is None:
            late.append(j)
            continue
        fleet.take(option)
    for j in sorted(late, key=lambda i: jobs[i].latest_s):
        option = fleet.best(rows, j, jobs[j], early_s, on_time_only=False) if allow_late else None
        if option is None:
            decision.unplaced[jobs[j].order_id] = "would be late" if not allow_late else "no vehicle can take it"
            continue
        fleet.take(option)
    decision.assignments = sorted(fleet.placed.values(), key=lambda a: (a.depart_s, a.vehicle_id))
    return decision


class _Rows:
    """Trip costs per job and worker class, as arrays: outbound, round trip and energy, NaN where
    the class cannot make the trip; and which workers each job may use at all."""

    def __init__(self, jobs: Sequence[Job], fleet: _Fleet, costs: Costs) -> None:
        n_jobs, n_classes = len(jobs), len(fleet.classes)
        self.out_s = np.full((n_jobs, n_classes), np.nan)
        self.round_s = np.full((n_jobs, n_classes), np.nan)
        self.energy_wh = np.full((n_jobs, n_classes), np.nan)
        self.alt_m: dict[tuple[int, int], float] = {}
        self.allowed = np.ones((n_jobs, len(fleet.workers)), dtype=bool)
        self._pinned_missing: dict[int, str] = {}
        for j, job in enumerate(jobs):
            for c, (model_name, depot) in enumerate(fleet.classes):
                model = fleet.models[model_name]
                if model.kind not in job.kinds or (job.depot is not None and job.depot != depot):
                    continue
                cost = costs.trip(model, depot, job)
                if cost is None:
                    continue
                self.out_s[j, c], self.round_s[j, c], self.energy_wh[j, c] = (
                    cost.outbound_s, cost.round_trip_s, cost.energy_wh)
                if cost.cruise_alt_m is not None:
                    self.alt_m[(j, c)] = cost.cruise_alt_m
            if job.pinned_vehicle is not None:
                self.allowed[j] = fleet.ids == job.pinned_vehicle
                if not self.allowed[j].any():
                    self._pinned_missing[j] = f"pinned to {job.pinned_vehicle}, which is not available"
        self.jobs = jobs
        # The same per worker (J x W), computed once: a row of each is all `_Fleet.best` reads.
        cls = fleet.cls
        self.out_w = self.out_s[:, cls]
        self.round_w = self.round_s[:, cls]
        self.energy_w = self.energy_wh[:, cls]
        self.need_w = self.energy_w + fleet.reserve_wh
        self.feasible_w = ~np.isnan(self.out_w) & self.allowed & (self.need_w <= fleet.pack_wh)
        self.charge_to_s = time_to_array(np.broadcast_to(fleet.pack_wh, self.need_w.shape),
                                         np.broadcast_to(fleet.power_w, self.need_w.shape), np.nan_to_num(self.need_w))

    def why_not(self, j: int) -> str | None:
        """Why no vehicle of the fleet could ever take job j, or None."""
        if j in self._pinned_missing:
            return self._pinned_missing[j]
        if np.isnan(self.out_s[j]).all():
            return "no vehicle of the fleet can make this trip (kind, payload, reach or zones)"
        return None


@dataclass(slots=True)
class _Option:
    j: int
    w: int
    job: Job
    charge_from_s: float
    depart_s: float
    arrive_s: float
    back_s: float
    energy_wh: float
    battery_at_depart_wh: float
    charged: bool
    alt_m: float | None
    gap: int | None = None  # placed into this idle gap of the worker's timeline (`_Gaps` index)


class _Gaps:
    """The times workers wait on the ground before a trip (for that trip's window), as arrays: a job
    may be placed into one if it is back before the later trip leaves. Energy: no charge is counted
    in the gap, and a worker with any charging stop after the gap offers it to no one (moving a
    charge would move its departure)."""

    def __init__(self, capacity: int = 64) -> None:
        self.n = 0
        self.live = 0
        self.start_s = np.zeros(capacity)
        self.end_s = np.zeros(capacity)
        self.wh = np.zeros(capacity)
        self.worker = np.zeros(capacity, dtype=np.intp)
        self.valid = np.zeros(capacity, dtype=bool)

    def add(self, worker: int, start_s: float, end_s: float, wh: float) -> None:
        if self.n == len(self.valid):
            for name in ("start_s", "end_s", "wh", "worker", "valid"):
                old = getattr(self, name)
                new = np.zeros(2 * len(old), dtype=old.dtype)
                new[:self.n] = old[:self.n]
                setattr(self, name, new)
        i = self.n
        self.start_s[i], self.end_s[i], self.wh[i], self.worker[i], self.valid[i] = start_s, end_s, wh, worker, True
        self.n += 1
        self.live += 1

    def drop(self, i: int) -> None:
        self.valid[i] = False
        self.live -= 1

    def close_worker(self, worker: int) -> None:
        closing = self.valid[:self.n] & (self.worker[:self.n] == worker)
        self.valid[:self.n][closing] = False
        self.live -= int(closing.sum())


class _Fleet:
    """The workers' timelines (when free, with how much charge) and the depots' chargers."""

    def __init__(self, workers: Sequence[Worker], chargers: Mapping[str, int], now_s: float) -> None:
        self.workers = list(workers)
        self.now_s = now_s
        self.models = {w.model.name: w.model for w in workers}
        self.classes: list[_Class] = list(dict.fromkeys((w.model.name, w.depot) for w in workers))
        index = {c: i for i, c in enumerate(self.classes)}
        self.cls = np.array([index[(w.model.name, w.depot)] for w in workers], dtype=np.intp)
        self.ids = np.array([w.vehicle_id for w in workers], dtype=object)
        self.ready_s = np.array([max(w.ready_s, now_s) for w in workers], dtype=np.float64)
        self.wh = np.array([w.battery_wh for w in workers], dtype=np.float64)
        self.on_charger = np.array([w.on_charger for w in workers], dtype=bool)
        self.pack_wh = np.array([w.model.battery_wh for w in workers], dtype=np.float64)
        self.power_w = np.array([w.model.charge_power_w for w in workers], dtype=np.float64)
        self.charged_s = time_to_array(self.pack_wh, self.power_w, self.wh)  # from empty to now's charge
        self.reserve_wh = np.array([w.model.battery_wh * w.model.reserve_fraction for w in workers])
        depots = list(dict.fromkeys(w.depot for w in workers))
        self.depot_of = np.array([depots.index(w.depot) for w in workers], dtype=np.intp)
        # Each depot's chargers as the times they are free again; a worker that already holds one
        # keeps it (it is not in the pool).
        self.pools: list[list[float]] = []
        for depot in depots:
            held = sum(1 for w in workers if w.depot == depot and w.on_charger)
            self.pools.append([now_s] * max(0, chargers.get(depot, 0) - held))
        self.charger_free_s = np.array([min(pool) if pool else np.inf for pool in self.pools])
        self.gaps = _Gaps()
        self.placed: dict[str, Assignment] = {}  # by order id
        self.placed_by: dict[int, list[str]] = {}  # order ids by worker index

    def best(self, rows: _Rows, j: int, job: Job, early_s: float, *, on_time_only: bool) -> _Option | None:
        feasible = rows.feasible_w[j]
        if not feasible.any():
            return None
        gap = self._best_gap(rows, j, job, early_s, on_time_only=on_time_only)
        if gap is not None:
            return gap  # idle time used: costs the fleet nothing
        out, need, energy = rows.out_w[j], rows.need_w[j], rows.energy_w[j]
        charge = feasible & (need > self.wh)
        if charge.any():
            start = np.where(charge & ~self.on_charger,
                             np.maximum(self.ready_s, self.charger_free_s[self.depot_of]), self.ready_s)
            ready = np.where(charge, start + rows.charge_to_s[j] - self.charged_s, start)
        else:
            start = ready = self.ready_s
        depart = np.maximum(ready, job.earliest_s - out - early_s)
        if on_time_only:
            # Free again soonest; then the least energy; then the fullest battery (so twins at one
            # depot share the work instead of one flying every sortie while the other waits).
            key = depart + rows.round_w[j] + 1e-3 * energy - 1e-4 * self.wh
            usable = feasible & (depart + out <= job.latest_s)
        else:
            key = depart + out  # the least late
            usable = feasible & np.isfinite(depart)  # (no charger at its depot: it never leaves)
        if not usable.any():
            return None
        key[~usable] = np.inf
        w = int(np.argmin(key))
        charged = bool(charge[w])
        battery = self.wh[w]
        if charged or self.on_charger[w]:  # charging goes on while it waits for the window
            battery = charged_wh(self.workers[w].model, battery, float(depart[w] - start[w]))
        depart_s = float(depart[w])
        return _Option(j, w, job, float(start[w]), depart_s, depart_s + float(out[w]),
                       depart_s + float(rows.round_w[j, w]), float(energy[w]), battery, charged,
                       rows.alt_m.get((j, int(self.cls[w]))))

    def _best_gap(self, rows: _Rows, j: int, job: Job, early_s: float, *, on_time_only: bool) -> _Option | None:
        g = self.gaps
        n = g.n
        if g.live == 0:
            return None
        w = g.worker[:n]
        c = self.cls[w]
        out_s, round_s, energy_wh = rows.out_s[j, c], rows.round_s[j, c], rows.energy_wh[j, c]
        depart_s = np.maximum(g.start_s[:n], job.earliest_s - out_s - early_s)
        back_s = depart_s + round_s
        ok = (g.valid[:n] & rows.allowed[j, w] & (back_s <= g.end_s[:n])
              & (g.wh[:n] - energy_wh >= self.reserve_wh[w]))
        if on_time_only:
            ok &= depart_s + out_s <= job.latest_s
        while ok.any():
            i = int(np.argmin(np.where(ok, back_s, np.inf)))
            worker = int(w[i])
            if self._slack_after(worker, float(g.end_s[i])) >= energy_wh[i]:
                return _Option(j, worker, job, float(depart_s[i]), float(depart_s[i]), float(depart_s[i] + out_s[i]),
                               float(back_s[i]), float(energy_wh[i]), float(g.wh[i]), False,
                               rows.alt_m.get((j, int(c[i]))), i)
            ok[i] = False
        return None

    def _slack_after(self, w: int, from_s: float) -> float:
        """How much less energy the worker's trips from `from_s` on could start with and still keep
        their reserve (each: battery at departure - energy - reserve; the least of them)."""
        reserve_wh = float(self.reserve_wh[w])
        trips = (self.placed[order_id] for order_id in self.placed_by.get(w, ()))
        return min((a.battery_at_depart_wh - a.energy_wh - reserve_wh for a in trips if a.depart_s >= from_s - 1e-9),
                   default=np.inf)

    def take(self, o: _Option) -> Assignment:
        assignment = self._assignment(o)
        self.placed[o.job.order_id] = assignment
        self.placed_by.setdefault(o.w, []).append(o.job.order_id)
        if o.gap is not None:
            self._fill(o, assignment)
            return assignment
        w = o.w
        if o.charged:
            self.gaps.close_worker(w)  # a charge after them: see `_Gaps`
        elif o.depart_s > self.ready_s[w] + GAP_MIN_S:
            self.gaps.add(w, float(self.ready_s[w]), o.depart_s, float(self.wh[w]))
        if o.charged and not self.on_charger[w]:
            pool = self.pools[self.depot_of[w]]
            pool.remove(min(pool))
            pool.append(o.depart_s)
            self.charger_free_s[self.depot_of[w]] = min(pool)
        elif self.on_charger[w]:  # it leaves its charger when it departs
            pool = self.pools[self.depot_of[w]]
            pool.append(o.depart_s)
            self.charger_free_s[self.depot_of[w]] = min(pool)
        self.on_charger[w] = False
        self.ready_s[w] = o.back_s
        self.wh[w] = o.battery_at_depart_wh - o.energy_wh
        self.charged_s[w] = time_to_s(float(self.pack_wh[w]), float(self.power_w[w]), float(self.wh[w]))
        return assignment

    def _fill(self, o: _Option, assignment: Assignment) -> None:
        """A trip placed in a gap: the gap splits around it, and every later trip of the worker, and
        every later gap, starts with that much less energy."""
        g, i, w = self.gaps, o.gap, o.w
        assert i is not None
        start_s, end_s, wh = float(g.start_s[i]), float(g.end_s[i]), float(g.wh[i])
        g.drop(i)
        later = g.valid[:g.n] & (g.worker[:g.n] == w) & (g.start_s[:g.n] >= end_s)
        g.wh[:g.n][later] -= o.energy_wh
        if o.depart_s - start_s > GAP_MIN_S:
            g.add(w, start_s, o.depart_s, wh)
        if end_s - o.back_s > GAP_MIN_S:
            g.add(w, o.back_s, end_s, wh - o.energy_wh)
        for order_id in self.placed_by[w]:
            a = self.placed[order_id]
            if a.depart_s >= o.back_s and order_id != o.job.order_id:
                self.placed[order_id] = replace(a, battery_at_depart_wh=a.battery_at_depart_wh - o.energy_wh)
        self.wh[w] -= o.energy_wh
        self.charged_s[w] = time_to_s(float(self.pack_wh[w]), float(self.power_w[w]), float(self.wh[w]))

    def _assignment(self, o: _Option) -> Assignment:
        worker = self.workers[o.w]
        return Assignment(
            order_id=o.job.order_id, vehicle_id=worker.vehicle_id, depot=worker.depot,
            charge_from_s=o.charge_from_s if o.charged else o.depart_s, depart_s=o.depart_s,
            arrive_s=o.arrive_s, back_s=o.back_s, energy_wh=o.energy_wh,
            battery_at_depart_wh=o.battery_at_depart_wh, lateness_s=max(0.0, o.arrive_s - o.job.latest_s),
            priority_weight=o.job.priority_weight, cruise_alt_m=o.alt_m,
        )
