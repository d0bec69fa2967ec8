"""The service's side of every sortie: start one (stored first, then flown), store and publish each
step it reports, give an order back to dispatch when its vehicle fails it, and pick every open
sortie up again after a restart, from where its vehicle actually is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fleetctl.clock import Clock
from fleetctl.errors import IllegalTransition
from fleetctl.fleet_view import FleetMember
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sorties import SortiePhase, SortiePlan, SortieRunner, fence_for
from fleetctl.store import Store
from planner.site import Site
from vehicles.errors import VehicleError
from vehicles.mavsdk_backend import MavsdkFleet

log = logging.getLogger(__name__)

#: Sorties an order may be given before it is failed for good.
MAX_ATTEMPTS = 3
#: How long a restarted service waits to hear a vehicle it had a sortie on (vehicle seconds).
REATTACH_TIMEOUT_S = 60.0

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
S = OrderState


class SortieManager:
    """Implements `fleetctl.sorties.SortieHooks` on the store; runs one task per active sortie."""

    def __init__(self, site: Site, store: Store, fleet: MavsdkFleet, members: dict[str, FleetMember],
                 clock: Clock, spawn: Spawn, on_vehicle_freed: Callable[[str], None]) -> None:
        self._site = site
        self._store = store
        self._fleet = fleet
        self._members = members
        self._clock = clock
        self._spawn = spawn
        self._on_vehicle_freed = on_vehicle_freed
        self.active: dict[str, SortiePlan] = {}  # vehicle_id -> the plan it flies
        self.started_s: dict[str, float] = {}  # vehicle_id -> when its sortie started (clock seconds)
        self.grounded: set[str] = set()  # vehicles an operator grounded (the store has the record)
        self.runners: dict[str, SortieRunner] = {}  # vehicle_id -> the runner of its sortie, once flying

    def busy(self, vehicle_id: str) -> bool:
        return vehicle_id in self.active

    async def launch(self, plan: SortiePlan) -> None:
        """Store the sortie (its order becomes assigned) and fly it. IllegalTransition if the
        order was taken meanwhile (e.g. cancelled): then nothing starts."""
        eta = self._clock.now().timestamp() + plan.outbound_s
        await self._store.create_sortie(plan.sortie_id, plan.order_id, plan.vehicle_id, asdict(plan),
                                        mission_items=plan.mission_total,
                                        eta=datetime.fromtimestamp(eta, tz=self._clock.now().tzinfo))
        self._run(plan, SortiePhase.PLANNED)

    async def recover(self) -> int:
        """Resume every sortie the store says is open; returns how many."""
        sorties = await self._store.open_sorties()
        for record in sorties:
            plan = SortiePlan.from_json_dict(record.plan)
            self._run(plan, SortiePhase(record.state))
            self.started_s[plan.vehicle_id] = record.created_at.timestamp()
        return len(sorties)

    async def recall(self, order_id: str, reason: str) -> SortiePlan:
        """Bring the vehicle carrying `order_id` home with its parcel (a cancellation in flight).
        IllegalTransition if no running sortie carries it."""
        for vehicle_id, plan in self.active.items():
            runner = self.runners.get(vehicle_id)
            if plan.order_id == order_id and runner is not None:
                await runner.recall(reason)
                return plan
        raise IllegalTransition(f"order {order_id}", "no sortie under way", "recalled")

    async def load_grounded(self) -> None:
        self.grounded = {v.vehicle_id for v in await self._store.list_vehicles() if v.grounded}

    def _run(self, plan: SortiePlan, phase: SortiePhase) -> None:
        self.active[plan.vehicle_id] = plan
        self.started_s[plan.vehicle_id] = self._clock.now().timestamp()
        self._spawn(self._fly(plan, phase), f"sortie-{plan.sortie_id}")

    async def _fly(self, plan: SortiePlan, phase: SortiePhase) -> None:
        member = self._members[plan.vehicle_id]
        try:
            try:
                vehicle = await self._fleet.vehicle(member.sysid, timeout_s=REATTACH_TIMEOUT_S)
            except VehicleError as e:
                await self.sortie_phase(plan, SortiePhase.FAILED, f"vehicle not heard: {e}")
                return
            fence = await asyncio.to_thread(fence_for, self._site, self._site.airspace, plan)
            runner = self.runners[plan.vehicle_id] = SortieRunner(plan, vehicle, fence, self, self._clock)
            await runner.run(phase)
        finally:
            if self.active.get(plan.vehicle_id) is plan:
                del self.active[plan.vehicle_id]
                self.runners.pop(plan.vehicle_id, None)
                self.started_s.pop(plan.vehicle_id, None)
            self._on_vehicle_freed(plan.vehicle_id)

    # ---- SortieHooks ----

    async def sortie_phase(self, plan: SortiePlan, phase: SortiePhase, detail: str = "") -> None:
        record = await self._store.get_sortie(plan.sortie_id)
        if record.state == phase and not detail:
            return  # a resumed sortie re-announcing where it stands
        if record.finished:
            return
        await self._store.update_sortie(plan.sortie_id, phase, detail=detail or None)
        if phase == SortiePhase.FAILED:
            await self._order_after_failure(plan, detail)

    async def order_step(self, plan: SortiePlan, state: OrderState, *, reason: str | None = None,
                         detail: str = "", eta: datetime | None = None,
                         proof: dict[str, Any] | None = None) -> None:
        current = await self._store.get_order(plan.order_id)
        if current.state == state or current.sortie_id != plan.sortie_id:
            return  # already there (a resumed sortie), or the order has moved on without us
        if state == S.ACCEPTED:
            await self._give_back(plan, reason or "sortie_failed", detail)
            return
        kwargs: dict[str, Any] = {"reason": reason, "detail": detail or None, "data": {"proof": proof} if proof else None}
        if eta is not None:
            kwargs["eta"] = eta
        try:
            await self._store.transition(plan.order_id, state, **kwargs)
        except IllegalTransition as e:
            log.warning("sortie %s: order %s: %s", plan.sortie_id, plan.order_id, e)

    async def _give_back(self, plan: SortiePlan, reason: str, detail: str) -> None:
        """The vehicle could not take the parcel: unload it and let dispatch try again, up to a limit."""
        order = await self._store.get_order(plan.order_id)
        if order.attempts >= MAX_ATTEMPTS:
            await self._store.transition(plan.order_id, S.FAILED, reason="attempts_exhausted",
                                         detail=f"{order.attempts} sorties failed; last: {reason}: {detail}")
        else:
            await self._store.transition(plan.order_id, S.ACCEPTED, reason=reason, detail=detail)

    async def _order_after_failure(self, plan: SortiePlan, detail: str) -> None:
        order = await self._store.get_order(plan.order_id)
        if order.sortie_id != plan.sortie_id or order.settled:
            return
        if order.state in (S.ASSIGNED, S.LOADING):
            await self._give_back(plan, "sortie_failed", detail)
        elif order.state in (S.IN_TRANSIT, S.DELIVERING):
            # Nobody knows where the parcel is: say so, never guess (the operator resolves it).
            await self._store.transition(plan.order_id, S.FAILED, reason="fate_unknown", detail=detail)
