"""One dispatch round on the live fleet: the solver (`planner.assign`) decides who and when, this
module feeds it from the store and the vehicles and carries out what is due now.

A round: fail the orders whose window closed while no vehicle took them; price every pending order
for every vehicle (cached, `MemoCosts`); tell the solver where and when each vehicle is next free
(now, or when its sortie should be back) and how full its battery is; launch the assignments of
vehicles that are free now and whose departure has come, each drone sortie first given a
conflict-free slot among the accepted flight intents (another cruise layer, or a later start); and
store the solver's forecast as every waiting order's ETA. Everything else is re-planned next round:
an order no vehicle has taken yet is never promised to one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from fleetctl.clock import Clock
from fleetctl.errors import IllegalTransition
from fleetctl.fleet_view import FleetMember, why_not_free
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Priority
from fleetctl.sortie_manager import SortieManager
from fleetctl.sorties import SortiePlan, VehicleSlot, plan_sortie
from fleetctl.store import Store
from fleetctl.store.records import OrderRecord
from fleetctl.tracks import AIRBORNE_M
from planner.airspace import NoFlyZone
from planner.assign import Assignment, Costs, Decision, Job, MemoCosts, Worker, assign
from planner.costs import SiteCosts
from planner.deconflict import Intent, IntentBook, NoConflictFreeSlot, Separation, drone_intent
from planner.errors import PlanningError
from planner.flight import FlightPlanner
from planner.site import Site
from vehicles.mavsdk_backend import MavsdkFleet

log = logging.getLogger(__name__)

#: A departure this close (clock seconds) is due now: rounds are not exact to the second.
DUE_S = 2.0
#: With no vehicle free, a full round (ETAs for every waiting order) runs at most this often (clock
#: seconds); in between a round only fails the orders whose window closed. Rounds run per intake
#: batch, and reading the whole backlog each time made intake quadratic (bench/intake.py).
FULL_ROUND_EVERY_S = 5.0
#: An ETA that moved less than this (clock seconds) is not stored again (each store is an event).
ETA_STEP_S = 60.0
#: A drone does not take off while another drone is airborne this close to its pad (m): climbing out
#: or landing there, or about to (at 12 m/s, 400 m is half a minute). The 4D plan keeps cruising
#: drones apart; this keeps the depot's own airspace clear of what the plan's timing cannot promise
#: (a demo day saw 4.4 m between a drone climbing out and one landing on the next pad).
DEPOT_HOLD_M = 400.0
#: ... nor while a drone coming back to the same depot is within this distance: ~70 s out at cruise
#: speed, longer than a climb-out to the lowest layer takes.
DEPOT_ARRIVAL_HOLD_M = 900.0
#: ... nor within this long of another drone's launch from the same depot (clock seconds: upload,
#: arming, the climb to the lowest layer), when it may not show as airborne yet.
CLIMB_OUT_S = 45.0
#: How soon (clock seconds) a held take-off is tried again.
DEPOT_HOLD_RETRY_S = 5.0
#: A sortie whose planned return has passed is expected back this much later (clock seconds).
OVERDUE_S = 60.0


@dataclass
class RoundStats:
    rounds: int = 0
    full_rounds: int = 0
    launched: int = 0
    latency_s: deque[float] | None = None  # the solver's wall time per full round, the last 1,000

    def __post_init__(self) -> None:
        self.latency_s = deque(maxlen=1000)


class AssignmentRule:
    """The `Decide` of `fleetctl.dispatch.Dispatcher` (see the module docstring)."""

    def __init__(self, site: Site, store: Store, fleet: MavsdkFleet, members: dict[str, FleetMember],
                 sorties: SortieManager, clock: Clock, *, costs: Costs | None = None,
                 separation: Separation | None = None) -> None:
        self._site = site
        self._store = store
        self._fleet = fleet
        self._members = members
        self._sorties = sorties
        self._clock = clock
        self._costs_source = costs
        self._site_costs = costs if isinstance(costs, SiteCosts) else SiteCosts(site)
        self._costs: MemoCosts | None = None
        self._flight: FlightPlanner | None = None
        self.intents = IntentBook(separation or Separation())
        self.last: Decision | None = None
        self.stats = RoundStats()
        self._full_at_s: float | None = None
        self._etas: dict[str, float] = {}
        self.retry_soon: Callable[[float, str], None] | None = None  # the dispatcher's wake_after

    def sortie_ended(self, vehicle_id: str) -> None:
        """Drop the flight intent of a vehicle's finished sortie (the dispatcher's vehicle-freed hook)."""
        for intent in list(self.intents.intents):
            if intent.vehicle_id == vehicle_id:
                self.intents.remove(intent.intent_id)

    async def add_zone(self, zone: NoFlyZone) -> int:
        """A new no-fly zone for every later decision: the trip prices and flight paths it can change
        are planned again (incrementally). Returns how many prices changed."""
        await self.add_zone_to_paths(zone)
        return await self.add_zone_to_prices(zone)

    async def add_zone_to_paths(self, zone: NoFlyZone) -> None:
        """The flight planner avoids the zone from now on (tens of ms: first, so drones in flight
        can be rerouted before the slower re-pricing)."""
        await self._ensure_planners()
        assert self._flight is not None
        await asyncio.to_thread(self._flight.add_zone, zone)

    async def add_zone_to_prices(self, zone: NoFlyZone) -> int:
        """The trip prices the zone changes, planned again (incrementally); how many changed."""
        await self._ensure_planners()
        assert self._costs is not None
        changed = 0
        if isinstance(self._costs_source, SiteCosts) or self._costs_source is None:
            changed = await asyncio.to_thread(self._site_costs.add_zone, zone)
        self._costs.clear()
        return changed

    async def remove_zone(self, zone_id: str) -> int:
        """UnknownZone if there is no such zone."""
        await self._ensure_planners()
        assert self._flight is not None
        assert self._costs is not None
        changed = await asyncio.to_thread(self._site_costs.remove_zone, zone_id)
        await asyncio.to_thread(self._flight.remove_zone, zone_id)
        self._costs.clear()
        return changed

    @property
    def flight(self) -> FlightPlanner | None:
        """The flight planner with the zones in force (None before the first round built it)."""
        return self._flight

    @property
    def zones(self) -> tuple[str, ...]:
        return self._flight.zones_in_effect if self._flight is not None else tuple(z.zone_id for z in self._site.zones)

    async def __call__(self) -> int:
        self.stats.rounds += 1
        now = self._clock.now()
        now_s = now.timestamp()
        free_now = self.free_vehicles()
        if not free_now and self._full_at_s is not None and now_s - self._full_at_s < FULL_ROUND_EVERY_S:
            for record in await self._store.list_orders(OrderState.ACCEPTED, window_closed_by=now, limit=10_000):
                await self._expire(record)
            return 0
        self._full_at_s = now_s
        self.stats.full_rounds += 1
        records = await self._store.list_orders(OrderState.ACCEPTED, limit=10_000)
        jobs: list[Job] = []
        for record in records:
            if record.window_latest is not None and record.window_latest <= now:
                await self._expire(record)
            elif (job := _job(record)) is not None:
                jobs.append(job)
        if not jobs:
            return 0
        await self._ensure_planners()
        assert self._costs is not None
        workers = self._workers(now_s, free_now)
        chargers = {name: depot.chargers for name, depot in self._site.depots.items()}
        costs = self._costs

        def solve() -> tuple[Decision, float]:
            started = time.perf_counter()
            decision = assign(jobs, workers, costs, now_s, chargers=chargers)
            return decision, time.perf_counter() - started

        decision, latency_s = await asyncio.to_thread(solve)
        assert self.stats.latency_s is not None
        self.stats.latency_s.append(latency_s)
        self.last = decision
        launched = await self._launch_due(decision, free_now, {j.order_id: j for j in jobs}, now_s)
        await self._store_etas(decision, {j.order_id for j in jobs}, launched)
        self._costs.forget({o for o in self._etas if o not in {j.order_id for j in jobs}})
        self.stats.launched += len(launched)
        return len(launched)

    # ---- the round's parts ----

    async def _ensure_planners(self) -> None:
        if self._flight is None:
            self._flight = await asyncio.to_thread(
                FlightPlanner, self._site.airspace, max_alt_m=max(self._site.cruise_layers_m))
        if self._costs is None:
            source = self._costs_source
            if source is None:  # its matrix fills on first use; warm it off the event loop
                await asyncio.to_thread(self._site_costs.warm)
                source = self._site_costs
            self._costs = MemoCosts(source)

    async def _expire(self, record: OrderRecord) -> None:
        with contextlib.suppress(IllegalTransition):  # it moved on meanwhile
            await self._store.transition(record.order_id, OrderState.FAILED, reason="window_missed",
                                         detail="no vehicle could take it before its window closed",
                                         expect=OrderState.ACCEPTED)
        self._etas.pop(record.order_id, None)

    def free_vehicles(self) -> dict[str, tuple[float, float]]:
        """Vehicles that could leave now (battery aside: the solver charges first), by id: (x, y)."""
        free = {}
        grounded = self._sorties.grounded
        for member in self._members.values():
            vehicle = self._fleet.vehicles.get(member.sysid)
            state = vehicle.state if vehicle is not None else None
            why = why_not_free(state, busy=self._sorties.busy(member.vehicle_id) or self._sorties.resting(member.vehicle_id),
                               grounded=member.vehicle_id in grounded, check_battery=False)
            if why is None and state is not None and state.position is not None:
                x, y = self._site.frame.to_local(state.position.lat_deg, state.position.lon_deg)
                free[member.vehicle_id] = (float(x), float(y))
        return free

    def _workers(self, now_s: float, free_now: dict[str, tuple[float, float]]) -> list[Worker]:
        workers = []
        for member in self._members.values():
            vehicle = self._fleet.vehicles.get(member.sysid)
            percent = vehicle.state.battery_percent if vehicle is not None else None
            pack_wh = member.model.battery_wh
            battery_wh = pack_wh * (percent if percent is not None else 0.0) / 100.0
            if member.vehicle_id in free_now:
                # On the ground at its depot: on a charger (the depot puts every landed vehicle on one).
                workers.append(Worker(member.vehicle_id, member.model, member.depot, now_s, battery_wh,
                                      on_charger=True))
                continue
            plan = self._sorties.active.get(member.vehicle_id)
            started_s = self._sorties.started_s.get(member.vehicle_id)
            if plan is None or started_s is None:
                continue  # grounded, link lost, not heard: not in the plan until it is back
            back_s = started_s + plan.round_trip_s
            if back_s < now_s:
                back_s = now_s + OVERDUE_S
            left = float(np.clip((back_s - now_s) / max(plan.round_trip_s, 1.0), 0.0, 1.0))
            workers.append(Worker(member.vehicle_id, member.model, member.depot, back_s,
                                  max(0.0, battery_wh - left * plan.energy_wh)))
        return workers

    async def _launch_due(self, decision: Decision, free_now: dict[str, tuple[float, float]],
                          jobs: dict[str, Job], now_s: float) -> set[str]:
        launched: set[str] = set()
        for a in decision.assignments:
            if a.vehicle_id not in free_now or a.depart_s > now_s + DUE_S:
                continue
            plan = await self._plan(a, free_now[a.vehicle_id], jobs[a.order_id], now_s)
            if plan is None:
                continue
            try:
                await self._sorties.launch(plan)
            except IllegalTransition:
                self.sortie_ended(a.vehicle_id)
                continue  # the order moved on (cancelled) between our read and now
            del free_now[a.vehicle_id]
            launched.add(a.order_id)
            self._etas.pop(a.order_id, None)
        return launched

    async def _plan(self, a: Assignment, start_xy: tuple[float, float], job: Job, now_s: float) -> SortiePlan | None:
        """The sortie for an assignment due now: the real path, the battery check with the charge it
        has now, and for a drone a conflict-free cruise layer; None if it cannot go now."""
        assert self._flight is not None
        member = self._members[a.vehicle_id]
        vehicle = self._fleet.vehicles.get(member.sysid)
        battery = (vehicle.state.battery_percent if vehicle is not None else None) or 0.0
        slot = VehicleSlot(member.vehicle_id, member.model, member.depot, start_xy, battery)
        flight = self._flight
        if member.kind == "drone" and (near := self._depot_traffic(a.vehicle_id, start_xy)) is not None:
            log.info("order %s: %s holds its take-off: %s is airborne near the pad", job.order_id, a.vehicle_id, near)
            self._full_at_s = None  # the next round is a full one
            if self.retry_soon is not None:
                self.retry_soon(DEPOT_HOLD_RETRY_S, f"{a.vehicle_id} take-off held")
            return None
        try:
            plan = await asyncio.to_thread(plan_sortie, self._site, flight, job.order_id, job.dropoff_xy_m, slot,
                                           job.weight_kg)
            if plan.kind != "drone":
                return plan
            path_xy = np.asarray(self._site.frame.points_to_local(np.asarray(plan.out_wgs84)), dtype=np.float64)

            def make(layer_m: float, depart_s: float) -> Intent:
                return drone_intent(plan.sortie_id, a.vehicle_id, path_xy, depart_s, layer_m, member.model)

            intent = self.intents.place(make, self._site.cruise_layers_m, now_s)
        except NoConflictFreeSlot as e:
            log.info("order %s: %s waits: %s", job.order_id, a.vehicle_id, e)
            return None
        except PlanningError as e:
            log.info("order %s: %s cannot take it now: %s", job.order_id, a.vehicle_id, e)
            return None
        if intent.depart_s > now_s + DUE_S:
            return None  # the airspace is busy: a later round starts it (or gives it to another vehicle)
        if intent.layer_m != plan.cruise_alt_m:
            try:
                plan = await asyncio.to_thread(plan_sortie, self._site, flight, job.order_id, job.dropoff_xy_m,
                                               slot, job.weight_kg, cruise_alt_m=intent.layer_m)
            except PlanningError as e:
                log.info("order %s: %s cannot fly at %.0f m: %s", job.order_id, a.vehicle_id, intent.layer_m, e)
                return None
            intent = drone_intent(plan.sortie_id, a.vehicle_id, path_xy, intent.depart_s, intent.layer_m,
                                  member.model)
        self.intents.add(intent)
        return plan

    def _depot_traffic(self, vehicle_id: str, pad_xy: tuple[float, float]) -> str | None:
        """Another drone airborne within DEPOT_HOLD_M of `pad_xy`, or on its way back to it within
        DEPOT_ARRIVAL_HOLD_M (it would be descending onto the next pad while this one climbs), if any."""
        now_s = self._clock.now().timestamp()
        for member in self._members.values():
            if member.vehicle_id == vehicle_id or member.kind != "drone":
                continue
            started_s = self._sorties.started_s.get(member.vehicle_id)
            if (started_s is not None and now_s - started_s < CLIMB_OUT_S
                    and math.dist(self._site.depots[member.depot].xy_m, pad_xy) < DEPOT_HOLD_M):
                return f"{member.vehicle_id} (taking off)"  # launched a moment ago, maybe still on its pad
            vehicle = self._fleet.vehicles.get(member.sysid)
            position = vehicle.state.position if vehicle is not None else None
            if position is None or position.alt_rel_m <= AIRBORNE_M:
                continue
            x, y = self._site.frame.to_local(position.lat_deg, position.lon_deg)
            away_m = math.dist((float(x), float(y)), pad_xy)
            if away_m < DEPOT_HOLD_M:
                return member.vehicle_id
            runner = self._sorties.runners.get(member.vehicle_id)
            home = self._sorties.active.get(member.vehicle_id)
            if (away_m < DEPOT_ARRIVAL_HOLD_M and runner is not None and home is not None
                    and math.dist(self._site.depots[home.depot].xy_m, pad_xy) < DEPOT_HOLD_M
                    and runner.parcel_delivered):
                return f"{member.vehicle_id} (on its way back)"
        return None

    async def _store_etas(self, decision: Decision, pending: set[str], launched: set[str]) -> None:
        etas: dict[str, datetime | None] = {}
        planned = decision.by_order()
        for order_id in pending - launched:
            a = planned.get(order_id)
            new_s = a.arrive_s if a is not None else None
            old_s = self._etas.get(order_id)
            if new_s is None and old_s is None:
                continue
            if new_s is not None and old_s is not None and abs(new_s - old_s) < ETA_STEP_S:
                continue
            etas[order_id] = datetime.fromtimestamp(new_s, tz=UTC) if new_s is not None else None
            if new_s is None:
                self._etas.pop(order_id, None)
            else:
                self._etas[order_id] = new_s
        await self._store.set_etas(etas)


def _job(record: OrderRecord) -> Job | None:
    order = record.order()
    if order is None or record.dropoff_xy_m is None:
        return None
    drop = order.dropoff if isinstance(order.dropoff, str) else f"xy:{record.dropoff_xy_m[0]:.1f},{record.dropoff_xy_m[1]:.1f}"
    return Job(
        order_id=record.order_id, kinds=frozenset(record.kinds), depot=record.depot, drop=drop,
        dropoff_xy_m=record.dropoff_xy_m, weight_kg=order.weight_kg, priority_weight=Priority(order.priority).weight,
        # The stored window, not the order's: a failed hand-off is tried again in a new one.
        earliest_s=(record.window_earliest or order.window.earliest).timestamp(),
        latest_s=(record.window_latest or order.window.latest).timestamp(),
        pinned_vehicle=record.pinned_vehicle,
    )


def latency_p(stats: RoundStats, q: float) -> float | None:
    """A percentile of the solver's wall time over the last rounds (seconds)."""
    values: Sequence[float] = list(stats.latency_s or ())
    return float(np.percentile(values, q)) if values else None
