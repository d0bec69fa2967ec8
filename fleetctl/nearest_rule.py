"""The simple *who* of dispatch until the assignment solver lands: most urgent order first, to the
nearest free vehicle at its pickup depot that can carry it there and back with its battery now.

One round: expire orders whose window closed unassigned, list the free vehicles, and for each
pending order whose window is near enough, plan with the candidates in turn until one is feasible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from fleetctl.clock import Clock
from fleetctl.dispatch import FreeVehicle, PendingOrder, nearest_free_vehicle, urgency
from fleetctl.errors import IllegalTransition
from fleetctl.fleet_view import FleetMember, why_not_free
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Priority
from fleetctl.sortie_manager import SortieManager
from fleetctl.sorties import VehicleSlot, plan_sortie
from fleetctl.store import Store
from fleetctl.store.records import OrderRecord
from planner.errors import PlanningError
from planner.flight import FlightPlanner
from planner.site import Site
from vehicles.mavsdk_backend import MavsdkFleet

log = logging.getLogger(__name__)

#: Start a sortie this long (clock seconds) before it would reach the drop-off at the window's
#: opening, at the earliest: a parcel should not wait at the door.
EARLY_S = 60.0
#: With no vehicle free, a round only fails the orders whose window closed, at most this often
#: (clock seconds): a window is minutes long, and a round runs per intake batch.
EXPIRE_EVERY_S = 1.0


class NearestVehicleRule:
    def __init__(self, site: Site, store: Store, fleet: MavsdkFleet, members: dict[str, FleetMember],
                 sorties: SortieManager, clock: Clock) -> None:
        self._site = site
        self._store = store
        self._fleet = fleet
        self._members = members
        self._sorties = sorties
        self._clock = clock
        self._flight: FlightPlanner | None = None
        self._expired_at: datetime | None = None  # the last round that failed the orders whose window closed

    async def __call__(self) -> int:
        now = self._clock.now()
        free = await self._free_vehicles()
        if not free:
            # Nothing can start: only orders whose window closed change, and only they are read, at
            # most every EXPIRE_EVERY_S. A round runs per intake batch: reading the whole backlog each
            # time made intake quadratic (bench/intake.py: 120 orders/s instead of 1,600 on SQLite).
            if self._expired_at is None or (now - self._expired_at).total_seconds() >= EXPIRE_EVERY_S:
                self._expired_at = now
                for record in await self._store.list_orders(OrderState.ACCEPTED, window_closed_by=now,
                                                            limit=10_000):
                    await self._pending_or_expire(record, now)
            return 0
        self._expired_at = now
        records = await self._store.list_orders(OrderState.ACCEPTED, limit=10_000)
        pending = [p for r in records if (p := await self._pending_or_expire(r, now)) is not None]
        if not pending:
            return 0
        if self._flight is None:
            self._flight = await asyncio.to_thread(
                FlightPlanner, self._site.airspace, max_alt_m=max(self._site.cruise_layers_m))
        started = 0
        for order in sorted(pending, key=urgency):
            if not free:
                break
            if order.earliest_s - EARLY_S > now.timestamp():
                continue
            vehicle = await self._plan_and_launch(order, free)
            if vehicle is not None:
                free.remove(vehicle)
                started += 1
        return started

    async def _pending_or_expire(self, record: OrderRecord, now: datetime) -> PendingOrder | None:
        order = record.order()
        if order is None or record.dropoff_xy_m is None:
            return None
        if record.window_latest is not None and record.window_latest <= now:
            with contextlib.suppress(IllegalTransition):  # it moved on meanwhile
                await self._store.transition(record.order_id, OrderState.FAILED, reason="window_missed",
                                             detail="no vehicle could take it before its window closed",
                                             expect=OrderState.ACCEPTED)
            return None
        return PendingOrder(record.order_id, record.kinds, record.depot, record.dropoff_xy_m, order.weight_kg,
                            Priority(order.priority), order.window.latest.timestamp(),
                            order.window.earliest.timestamp())

    async def _free_vehicles(self) -> list[FreeVehicle]:
        by_sysid = self._fleet.vehicles
        free = []
        grounded: set[str] | None = None
        for member in self._members.values():
            vehicle = by_sysid.get(member.sysid)
            state = vehicle.state if vehicle is not None else None
            if why_not_free(state, busy=self._sorties.busy(member.vehicle_id), grounded=False) is not None:
                continue
            if grounded is None:  # read only when a vehicle could go: a round runs per intake batch
                grounded = {v.vehicle_id for v in await self._store.list_vehicles() if v.grounded}
            if member.vehicle_id not in grounded:
                assert state is not None
                assert state.position is not None
                xy = self._site.frame.to_local(state.position.lat_deg, state.position.lon_deg)
                free.append(FreeVehicle(member.vehicle_id, member.kind, member.depot, (float(xy[0]), float(xy[1])),
                                        member.model.max_payload_kg))
        return free

    async def _plan_and_launch(self, order: PendingOrder, free: list[FreeVehicle]) -> FreeVehicle | None:
        assert self._flight is not None
        for candidate in nearest_free_vehicle(order, free):
            member = self._members[candidate.vehicle_id]
            vehicle = self._fleet.vehicles.get(member.sysid)
            battery = (vehicle.state.battery_percent if vehicle is not None else None) or 0.0
            slot = VehicleSlot(member.vehicle_id, member.model, member.depot, candidate.xy_m, battery)
            try:
                plan = await asyncio.to_thread(plan_sortie, self._site, self._flight, order.order_id,
                                               order.dropoff_xy_m, slot, order.weight_kg)
            except PlanningError as e:
                log.info("order %s: %s cannot take it: %s", order.order_id, candidate.vehicle_id, e)
                continue
            try:
                await self._sorties.launch(plan)
            except IllegalTransition:
                return None  # the order moved on (cancelled) between our read and now
            return candidate
        return None
