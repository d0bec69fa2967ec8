"""What bench/dispatch_bench.py simulates: a seeded order stream on a site's real drop points, the trip
costs, and a discrete-event simulation of the dispatch loop with two dispatchers under test (the
planner's `assign` in a rolling horizon, and FIFO to the nearest available vehicle).

The simulation is pure Python and deterministic (no MAVLink, no clock): events are order arrivals,
vehicles back at their depot, batteries full, planned departures coming due, and a periodic tick.
At every event time the dispatcher under test decides once; vehicles fly (or drive) their trips in
exactly the TripCost times and use exactly its energy; an idle vehicle at its depot below a full
pack takes a charger when one is free (`site.depots[d].chargers`, first come first served) and
charges by `planner.charging`. Both dispatchers live in the same depot world; only the decisions
differ. Decision latency is the wall time of one decision (inputs built, solver, launches picked).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fleetctl.orders.model import Priority
from planner.assign import Costs, Decision, Job, MemoCosts, Worker, assign
from planner.charging import charge_time_s, charged_wh
from planner.costs import SiteCosts
from planner.site import Site
from planner.vehicle_model import VehicleModel

TICK_S = 30.0  # fleetctl.dispatch.DEFAULT_TICK_S
EARLY_S = 60.0  # may reach the drop-off this long before its window opens (assign's early_s; nearest_rule)
LIGHT_SHARE = 0.6  # of orders: 0.2-2.5 kg (a drone can carry them); the rest 2.5-8 kg (robots only)
PRIORITY_MIX: tuple[tuple[Priority, float], ...] = (
    (Priority.STANDARD, 0.88), (Priority.EXPRESS, 0.10), (Priority.MEDICAL, 0.02))
_EPS = 1e-6


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class Order:
    order_id: str
    arrival_s: float
    drop: str
    xy_m: tuple[float, float]
    weight_kg: float
    kinds: frozenset[str]
    priority: Priority
    earliest_s: float
    latest_s: float

    def job(self) -> Job:
        return Job(self.order_id, self.kinds, None, self.drop, self.xy_m, self.weight_kg, self.priority.weight,
                   self.earliest_s, self.latest_s)


def models_by_kind(site: Site) -> dict[str, VehicleModel]:
    """The site's first model of each kind (the bench's fleet has one model per kind)."""
    out: dict[str, VehicleModel] = {}
    for m in site.vehicle_models.values():
        out.setdefault(m.kind, m)
    return out


def generate_orders(site: Site, costs: Costs, *, rate_per_h: float, hours: float, seed: int,
                    prefix: str = "o") -> list[Order]:
    """Poisson arrivals over `hours`; each order on a random drop point of the site, a mixed weight,
    a window opening 0-15 min after arrival and 30-90 min long, 88/10/2 % standard/express/medical.
    An order's kinds are those whose model can carry its weight, may use its drop point and has a trip
    from some depot (a drop point no vehicle could serve at that weight is drawn again, as intake
    would reject the order)."""
    rng = np.random.default_rng([seed, round(rate_per_h * 1000)])
    models = models_by_kind(site)
    drops = sorted(site.drop_points.values(), key=lambda d: d.name)
    priorities = [p for p, _ in PRIORITY_MIX]
    shares = np.array([s for _, s in PRIORITY_MIX])
    orders: list[Order] = []
    t = 0.0
    end_s = hours * 3600.0
    while True:
        t += float(rng.exponential(3600.0 / rate_per_h))
        if t >= end_s:
            break
        light = bool(rng.random() < LIGHT_SHARE)
        weight = float(rng.uniform(0.2, 2.5) if light else rng.uniform(2.5, 8.0))
        earliest = t + float(rng.uniform(0.0, 15 * 60.0))
        latest = earliest + float(rng.uniform(30 * 60.0, 90 * 60.0))
        priority = priorities[int(rng.choice(len(priorities), p=shares))]
        oid = f"{prefix}{len(orders):05d}"
        while True:
            drop = drops[int(rng.integers(len(drops)))]
            allowed = {k for k, ok in (("drone", drop.drone_ok), ("robot", drop.robot_ok))
                       if ok and k in models and weight <= models[k].max_payload_kg}
            probe = Order(oid, t, drop.name, drop.xy_m, weight, frozenset(allowed), priority, earliest, latest)
            kinds = frozenset(k for k in allowed
                              if any(costs.trip(models[k], d, probe.job()) is not None for d in site.depots))
            if kinds:
                break
        orders.append(Order(oid, t, drop.name, drop.xy_m, weight, kinds, priority, earliest, latest))
    return orders


# --------------------------------------------------------------------------- costs


def make_costs(site: Site, *, warm: bool = True, progress: Callable[[int, int], None] | None = None) -> SiteCosts:
    """The planner's trip costs for the site; `warm`: every depot x drop point planned up front (so
    that no decision pays for a first flight plan or route)."""
    costs = SiteCosts(site)
    if warm:
        costs.warm(progress)
    return costs


# --------------------------------------------------------------------------- fleet


@dataclass(frozen=True)
class FleetMember:
    vehicle_id: str
    model: VehicleModel
    depot: str


def site_fleet(site: Site, drones: int = 6, robots: int = 4) -> list[FleetMember]:
    """The site's own fleet when it has `drones` + `robots` vehicles of those kinds, else that many
    split evenly over the depots."""
    own = [FleetMember(f.vehicle_id, site.vehicle_model(f.model), f.depot) for f in site.fleet]
    if (sum(m.model.kind == "drone" for m in own), sum(m.model.kind == "robot" for m in own)) == (drones, robots):
        return own
    return built_fleet(site, drones, robots)


def built_fleet(site: Site, drones: int, robots: int) -> list[FleetMember]:
    models = models_by_kind(site)
    depots = sorted(site.depots)
    fleet: list[FleetMember] = []
    for kind, count, stem in (("drone", drones, "quad"), ("robot", robots, "robot")):
        for i in range(count):
            fleet.append(FleetMember(f"{stem}-{i + 1}", models[kind], depots[i * len(depots) // count]))
    return fleet


# --------------------------------------------------------------------------- simulation


@dataclass
class VehicleState:
    vehicle_id: str
    model: VehicleModel
    depot: str
    xy_m: tuple[float, float]
    battery_wh: float  # now when at the depot (as of `since` when on a charger); at return when out
    out_until: float | None = None  # back at the depot then; None: at the depot
    on_charger: bool = False
    since: float = 0.0
    queued: bool = False
    charge_token: int = 0

    @property
    def reserve_wh(self) -> float:
        return self.model.reserve_fraction * self.model.battery_wh


@dataclass(frozen=True)
class Delivery:
    order_id: str
    vehicle_id: str
    depart_s: float
    arrive_s: float
    lateness_s: float
    energy_wh: float
    priority_weight: int


@dataclass
class SimResult:
    dispatcher: str
    orders: int
    deliveries: list[Delivery] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    refused: int = 0  # launches the vehicle could not make (battery short of trip + reserve)
    max_pending: int = 0
    sim_end_s: float = 0.0
    wall_s: float = 0.0
    note: str = ""

    @property
    def on_time(self) -> int:
        return sum(d.lateness_s <= 0.0 for d in self.deliveries)

    @property
    def on_time_weighted(self) -> int:
        return sum(d.priority_weight for d in self.deliveries if d.lateness_s <= 0.0)

    @property
    def late(self) -> int:
        return sum(d.lateness_s > 0.0 for d in self.deliveries)

    @property
    def energy_wh(self) -> float:
        return sum(d.energy_wh for d in self.deliveries)

    def lateness_p95_s(self) -> float | None:
        """Over delivered orders (0 for the on-time ones)."""
        return percentile([d.lateness_s for d in self.deliveries], 0.95)

    def latency_ms(self, q: float) -> float | None:
        p = percentile(self.latencies_s, q)
        return None if p is None else 1e3 * p


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), 100.0 * q))


class Dispatcher(Protocol):
    name: str

    def decide(self, sim: Simulation, now: float) -> tuple[list[tuple[str, str]], float | None]:
        """(vehicle id, order id) pairs to launch now, and when to be woken next (None: no need)."""
        ...


class Simulation:
    """One run of one dispatcher over one order stream (see the module docstring)."""

    def __init__(self, fleet: Sequence[FleetMember], orders: Sequence[Order], costs: Costs,
                 chargers: Mapping[str, int], depot_xy: Mapping[str, tuple[float, float]]) -> None:
        self.costs = costs
        self.chargers = dict(chargers)
        self.vehicles = {m.vehicle_id: VehicleState(m.vehicle_id, m.model, m.depot, depot_xy[m.depot],
                                                    m.model.battery_wh) for m in fleet}
        self.orders = {o.order_id: o for o in orders}
        self.jobs = {o.order_id: o.job() for o in orders}
        self.pending: dict[str, Order] = {}  # arrived, not launched, window open
        self._free = dict(chargers)
        self._queue: dict[str, deque[str]] = {d: deque() for d in chargers}
        self._events: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._wakes: set[float] = set()
        self._unresolved = len(orders)
        self.result: SimResult | None = None

    # ---- events

    def _push(self, t: float, kind: str, what: str = "") -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, what))

    # ---- charging

    def battery_now(self, v: VehicleState, now: float) -> float:
        if v.on_charger:
            return charged_wh(v.model, v.battery_wh, now - v.since)
        return v.battery_wh

    def _settle(self, v: VehicleState, now: float) -> None:
        if v.on_charger:
            v.battery_wh = charged_wh(v.model, v.battery_wh, now - v.since)
            v.since = now

    def _want_charge(self, v: VehicleState, now: float) -> None:
        if v.out_until is not None or v.on_charger or v.queued or v.battery_wh >= v.model.battery_wh - 1e-3:
            return
        if self._free[v.depot] > 0:
            self._free[v.depot] -= 1
            v.on_charger = True
            v.since = now
            v.charge_token += 1
            full_at = now + charge_time_s(v.model, v.battery_wh, v.model.battery_wh)
            self._push(full_at, "full", f"{v.vehicle_id}|{v.charge_token}")
        else:
            v.queued = True
            self._queue[v.depot].append(v.vehicle_id)

    def _release(self, v: VehicleState, now: float) -> None:
        if v.queued:
            self._queue[v.depot].remove(v.vehicle_id)
            v.queued = False
        if not v.on_charger:
            return
        self._settle(v, now)
        v.on_charger = False
        self._free[v.depot] += 1
        queue = self._queue[v.depot]
        while queue and self._free[v.depot] > 0:
            nxt = self.vehicles[queue.popleft()]
            nxt.queued = False
            self._want_charge(nxt, now)

    # ---- what dispatchers read

    def worker(self, v: VehicleState, now: float) -> Worker:
        if v.out_until is not None:
            return Worker(v.vehicle_id, v.model, v.depot, v.out_until, v.battery_wh, False)
        return Worker(v.vehicle_id, v.model, v.depot, now, self.battery_now(v, now), v.on_charger)

    # ---- run

    def run(self, dispatcher: Dispatcher) -> SimResult:
        began = time.perf_counter()
        res = SimResult(dispatcher.name, len(self.orders))
        self.result = res
        for o in self.orders.values():
            self._push(o.arrival_s, "arrive", o.order_id)
        self._push(0.0, "tick")
        now = 0.0
        while self._events:
            now = self._events[0][0]
            while self._events and self._events[0][0] <= now + _EPS:
                _, _, kind, what = heapq.heappop(self._events)
                self._handle(kind, what, now)
            if self._unresolved == 0 and all(v.out_until is None for v in self.vehicles.values()):
                continue  # nothing left to decide; drain the remaining (charging) events
            for oid in [oid for oid, o in self.pending.items() if o.latest_s <= now]:
                del self.pending[oid]
                res.dropped.append(oid)
                self._unresolved -= 1
            res.max_pending = max(res.max_pending, len(self.pending))
            if self._unresolved == 0:
                continue
            t0 = time.perf_counter()
            launches, wake = dispatcher.decide(self, now)
            res.latencies_s.append(time.perf_counter() - t0)
            for vid, oid in launches:
                self._launch(self.vehicles[vid], self.pending[oid], now, res)
            if wake is not None and wake > now + _EPS and wake not in self._wakes:
                self._wakes.add(wake)
                self._push(wake, "wake")
        res.sim_end_s = now
        res.wall_s = time.perf_counter() - began
        return res

    def _handle(self, kind: str, what: str, now: float) -> None:
        if kind == "arrive":
            self.pending[what] = self.orders[what]
        elif kind == "tick":
            if self._unresolved > 0:
                self._push(now + TICK_S, "tick")
        elif kind == "back":
            v = self.vehicles[what]
            v.out_until = None
            self._want_charge(v, now)
        elif kind == "full":
            vid, token = what.split("|")
            v = self.vehicles[vid]
            if v.on_charger and v.charge_token == int(token):
                self._release(v, now)
                v.battery_wh = v.model.battery_wh
        elif kind == "wake":
            self._wakes.discard(now)

    def _launch(self, v: VehicleState, order: Order, now: float, res: SimResult) -> None:
        assert v.out_until is None, f"{v.vehicle_id} is out"
        trip = self.costs.trip(v.model, v.depot, self.jobs[order.order_id])
        battery = self.battery_now(v, now)
        if trip is None or battery - trip.energy_wh < v.reserve_wh - 1e-6:
            res.refused += 1
            return
        self._release(v, now)
        v.battery_wh = battery - trip.energy_wh
        v.out_until = now + trip.round_trip_s
        self._push(v.out_until, "back", v.vehicle_id)
        del self.pending[order.order_id]
        self._unresolved -= 1
        arrive = now + trip.outbound_s
        res.deliveries.append(Delivery(order.order_id, v.vehicle_id, now, arrive, max(0.0, arrive - order.latest_s),
                                       trip.energy_wh, order.priority.weight))


# --------------------------------------------------------------------------- dispatchers


class FifoNearest:
    """What simple systems do: the oldest pending order whose window is near (the vehicle may leave
    EARLY_S before it opens, as fleetctl's nearest rule) goes to the nearest available vehicle (at its
    depot, able to carry it there, battery for the trip and the reserve now), and so on down the queue."""

    name = "FIFO"

    def decide(self, sim: Simulation, now: float) -> tuple[list[tuple[str, str]], float | None]:
        free = [v for v in sim.vehicles.values() if v.out_until is None]
        launches: list[tuple[str, str]] = []
        for order in sorted(sim.pending.values(), key=lambda o: o.arrival_s):
            if not free:
                break
            if order.earliest_s - EARLY_S > now:
                continue
            able = sorted((v for v in free if v.model.kind in order.kinds
                           and v.model.max_payload_kg >= order.weight_kg),
                          key=lambda v: math.dist(v.xy_m, order.xy_m))
            job = sim.jobs[order.order_id]
            for v in able:
                trip = sim.costs.trip(v.model, v.depot, job)
                if trip is not None and sim.battery_now(v, now) - trip.energy_wh >= v.reserve_wh:
                    launches.append((v.vehicle_id, order.order_id))
                    free.remove(v)
                    break
        return launches, None


class FleetctlAssign:
    """planner.assign.assign in a rolling horizon, as fleetctl's dispatcher calls it: every event
    re-plans all pending orders onto every vehicle (busy ones from their predicted return, with the
    charge they will have), with the trip costs remembered across rounds (`MemoCosts`, forgetting the
    orders that left); launches the plan's departures that are due for vehicles at their depot, and
    asks to be woken at the next planned departure of one of them. The rest of the plan is the
    forecast (ETAs), re-planned at the next event."""

    name = "fleetctl"

    def __init__(self, costs: Costs, solver: Callable[..., Decision] = assign) -> None:
        self._memo = MemoCosts(costs)
        self._solver = solver  # assign, or a stand-in with its signature (tests)
        self._known: set[str] = set()

    def decide(self, sim: Simulation, now: float) -> tuple[list[tuple[str, str]], float | None]:
        gone = self._known - sim.pending.keys()
        if gone:
            self._memo.forget(gone)
            self._known -= gone
        if not sim.pending:
            return [], None
        self._known.update(sim.pending)
        jobs = [sim.jobs[oid] for oid in sim.pending]
        workers = [sim.worker(v, now) for v in sim.vehicles.values()]
        decision = self._solver(jobs, workers, self._memo, now, chargers=sim.chargers, early_s=EARLY_S)
        launches: list[tuple[str, str]] = []
        wake: float | None = None
        seen: set[str] = set()
        for a in sorted(decision.assignments, key=lambda a: a.depart_s):
            if a.vehicle_id in seen:
                continue
            seen.add(a.vehicle_id)
            if sim.vehicles[a.vehicle_id].out_until is not None:
                continue  # a forecast: it leaves after it is back, re-planned then
            if a.depart_s <= now + _EPS:
                launches.append((a.vehicle_id, a.order_id))
            elif wake is None or a.depart_s < wake:
                wake = a.depart_s
        return launches, wake


def assign_ready() -> bool:
    """False while planner.assign.assign is still the NotImplementedError stub."""
    import inspect

    import planner.assign

    return "raise NotImplementedError" not in inspect.getsource(planner.assign.assign)


def simulate(fleet: Sequence[FleetMember], orders: Sequence[Order], costs: Costs, chargers: Mapping[str, int],
             depot_xy: Mapping[str, tuple[float, float]], dispatcher: Dispatcher) -> SimResult:
    return Simulation(fleet, orders, costs, chargers, depot_xy).run(dispatcher)
