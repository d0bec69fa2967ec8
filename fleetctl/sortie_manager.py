"""The service's side of every sortie: start one (stored first, then flown), store and publish each
step it reports, give an order back to dispatch when its vehicle fails it, and pick every open
sortie up again after a restart, from where its vehicle actually is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from fleetctl.clock import Clock
from fleetctl.errors import IllegalTransition
from fleetctl.fleet_view import FleetMember
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sorties import SortiePhase, SortiePlan, SortieRunner, fence_for
from fleetctl.sorties.policy import VEHICLE_REASONS, ContingencySettings
from fleetctl.sorties.replan import Reroute, affected, reroute
from fleetctl.store import Store
from planner.airspace import Airspace, NoFlyZone
from planner.errors import DropoffInsideZone, PlanningError
from planner.flight import FlightPlanner
from planner.site import Site
from vehicles.base import VehicleState
from vehicles.errors import VehicleError
from vehicles.mavsdk_backend import MavsdkFleet

log = logging.getLogger(__name__)

#: Sorties an order may be given before it is failed for good.
MAX_ATTEMPTS = 3
#: A drone told to hold before it is rerouted has this long to stop (vehicle seconds).
HOLD_SETTLE_S = 8.0
#: A vehicle that refused a sortie gets nothing new for this long (clock seconds).
REFUSED_REST_S = 60.0
#: Orders whose PIN came in before their resumed sortie's runner was set up, kept at most.
EARLY_PINS_MAX = 256
#: How long a restarted service waits to hear a vehicle it had a sortie on (vehicle seconds).
REATTACH_TIMEOUT_S = 60.0

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
S = OrderState


class SortieManager:
    """Implements `fleetctl.sorties.SortieHooks` on the store; runs one task per active sortie."""

    def __init__(self, site: Site, store: Store, fleet: MavsdkFleet, members: dict[str, FleetMember],
                 clock: Clock, spawn: Spawn, on_vehicle_freed: Callable[[str], None], *,
                 policy: ContingencySettings | None = None) -> None:
        self._policy = policy or ContingencySettings()
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
        self._early_pins: dict[str, list[str]] = {}  # order_id -> PINs that came before its runner
        self.airspace: Airspace = site.airspace  # the zones in force, an operator's included
        # One mission/fence transfer at a time per vehicle (PX4 serves one; a second is refused
        # "Busy"), kept across its sorties: a new sortie's upload waits for a reroute still going.
        self._transfer_locks: dict[str, asyncio.Lock] = {}
        self.resting_until_s: dict[str, float] = {}  # vehicle_id -> clock s: refused a sortie, set aside

    def resting(self, vehicle_id: str) -> bool:
        """A vehicle that refused a sortie a moment ago (arming denied, an upload refused) is set aside
        for REFUSED_REST_S, so one sick vehicle does not use up an order's attempts."""
        until = self.resting_until_s.get(vehicle_id)
        return until is not None and self._clock.now().timestamp() < until

    def busy(self, vehicle_id: str) -> bool:
        return vehicle_id in self.active

    async def launch(self, plan: SortiePlan) -> None:
        """Store the sortie (its order becomes assigned) and fly it. IllegalTransition if the
        order was taken meanwhile (e.g. cancelled): then nothing starts."""
        order = await self._store.get_order(plan.order_id)
        handoff = str((order.payload or {}).get("handoff") or "locker")
        if handoff != plan.handoff:
            plan = replace(plan, handoff=handoff)
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
            phase = SortiePhase(record.state)
            order = await self._store.get_order(plan.order_id)
            bringing_back = None
            if order.sortie_id == plan.sortie_id:
                # The order may be a step ahead of the sortie (a kill between the two writes).
                if order.state == S.DELIVERED and phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING):
                    phase = SortiePhase.RETURNING
                elif order.parcel_on_board and order.state in (S.FAILED, S.CANCELLED, S.RETURNING):
                    bringing_back = _back_reason(order.state, order.reason)
            self._run(plan, phase, bringing_back=bringing_back)
            self.started_s[plan.vehicle_id] = record.created_at.timestamp()
        return len(sorties)

    def offer_pin(self, order_id: str, pin: str) -> bool:
        """A recipient's PIN for `order_id`: True when a robot waiting at the door took it."""
        for vehicle_id, plan in self.active.items():
            runner = self.runners.get(vehicle_id)
            if plan.order_id == order_id and runner is not None:
                return runner.offer_pin(pin)
            if plan.order_id == order_id:  # its runner is being set up (a restart): keep it for it
                if len(self._early_pins) >= EARLY_PINS_MAX:
                    self._early_pins.pop(next(iter(self._early_pins)))
                self._early_pins.setdefault(order_id, []).append(pin)
                return True
        return False

    async def recall(self, order_id: str, reason: str) -> SortiePlan:
        """Bring the vehicle carrying `order_id` home with its parcel (a cancellation in flight).
        IllegalTransition if no running sortie carries it."""
        for vehicle_id, plan in self.active.items():
            runner = self.runners.get(vehicle_id)
            if plan.order_id == order_id and runner is not None:
                await runner.recall(reason)
                return plan
        raise IllegalTransition(f"order {order_id}", "no sortie under way", "recalled")

    async def zones_changed(self, flight: FlightPlanner, added: Sequence[NoFlyZone] = ()) -> list[str]:
        """The zones in force changed (an operator added one): every drone whose way ahead now comes
        too close to a zone holds, gets a new path around it from where it stopped, and flies on (a
        drop point inside the zone: the parcel comes home). Others fly on untouched. Returns the
        sorties rerouted."""
        self.airspace = flight.airspace
        at_s = self._clock.now().timestamp()
        # Only the zones just added can block a sortie planned around the others (a path planned
        # along a zone's buffer must not count as blocked by it after its WGS84 round trip).
        new_only = Airspace(self.airspace.area, tuple(added), self.airspace.buffer_m) if added else self.airspace
        todo = []
        for vehicle_id, runner in list(self.runners.items()):
            plan, state = runner.plan, runner.vehicle_state
            if plan.kind != "drone" or state.position is None or self.active.get(vehicle_id) is not plan:
                continue
            current = state.mission.current if state.mission.total == plan.mission_total else 0
            position = (state.position.lat_deg, state.position.lon_deg)
            if await asyncio.to_thread(affected, self._site, new_only, plan, current, position, at_s=at_s):
                todo.append(runner)
        results = await asyncio.gather(*(self._reroute(r, flight, at_s) for r in todo), return_exceptions=True)
        rerouted = []
        for runner, result in zip(todo, results, strict=True):
            plan = runner.plan
            if isinstance(result, (PlanningError, VehicleError)):
                log.warning("sortie %s: no way around the new zone: %s", plan.sortie_id, result)
                await runner.resume_any()
                record = await self._store.get_sortie(plan.sortie_id)
                if not record.finished:
                    await self._store.update_sortie(plan.sortie_id, record.state,
                                                    detail=f"at risk: no way around the new zone: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                rerouted.append(plan.sortie_id)
        return rerouted

    async def _reroute(self, runner: SortieRunner, flight: FlightPlanner, at_s: float) -> None:
        plan = runner.plan
        await runner.hold()
        # Planned from where it stopped (it brakes a few metres): the new mission starts there.
        state = await self._fleet_state_settled(runner)
        assert state.position is not None
        position = (state.position.lat_deg, state.position.lon_deg, state.position.alt_rel_m)
        current = state.mission.current if state.mission.total == plan.mission_total else 0
        member = self._members[plan.vehicle_id]
        order = await self._store.get_order(plan.order_id)
        payload_kg = float((order.payload or {}).get("weight_kg") or 0.0)
        delivered = runner.parcel_delivered

        def plan_again(delivered: bool) -> Reroute:
            return reroute(self._site, flight, self.airspace, plan, position=position, current_seq=current,
                           delivered=delivered, at_s=at_s, model=member.model,
                           payload_kg=0.0 if delivered else payload_kg)

        try:
            new = await asyncio.to_thread(plan_again, delivered)
        except DropoffInsideZone as e:
            await runner.abandon_delivery("dropoff_closed", f"the drop point is inside a new no-fly zone: {e}")
            new = await asyncio.to_thread(plan_again, True)
        fence = await asyncio.to_thread(fence_for, self._site, self.airspace, new.plan)
        await runner.reroute(new.items, new.plan, fence, fence_from_seq=new.fence_from_seq)
        self.active[plan.vehicle_id] = new.plan
        record = await self._store.get_sortie(plan.sortie_id)
        await self._store.update_sortie(plan.sortie_id, record.state, plan=asdict(new.plan),
                                        mission_items=new.plan.mission_total,
                                        detail=f"rerouted around the new zone: {new.reason}")
        if not delivered and new.plan.route == "resume":
            await self.order_eta(new.plan, self._clock.now() + timedelta(seconds=new.plan.outbound_s))

    async def _fleet_state_settled(self, runner: SortieRunner) -> VehicleState:
        """The vehicle's state once it has stopped in Hold (or after HOLD_SETTLE_S, vehicle time)."""
        def stopped(s: VehicleState) -> bool:
            v = s.velocity
            return v is not None and (v.north_m_s ** 2 + v.east_m_s ** 2) ** 0.5 < 0.5

        with contextlib.suppress(VehicleError):
            return await runner.wait_vehicle(stopped, HOLD_SETTLE_S, "stopped in Hold")
        return runner.vehicle_state

    async def load_grounded(self) -> None:
        self.grounded = {v.vehicle_id for v in await self._store.list_vehicles() if v.grounded}

    def _run(self, plan: SortiePlan, phase: SortiePhase, *, bringing_back: str | None = None) -> None:
        self.active[plan.vehicle_id] = plan
        self.started_s[plan.vehicle_id] = self._clock.now().timestamp()
        self._spawn(self._fly(plan, phase, bringing_back), f"sortie-{plan.sortie_id}")

    async def _fly(self, plan: SortiePlan, phase: SortiePhase, bringing_back: str | None) -> None:
        member = self._members[plan.vehicle_id]
        try:
            try:
                vehicle = await self._fleet.vehicle(member.sysid, timeout_s=REATTACH_TIMEOUT_S)
            except VehicleError as e:
                await self.sortie_phase(plan, SortiePhase.FAILED, f"vehicle not heard: {e}")
                return
            fence = await asyncio.to_thread(fence_for, self._site, self.airspace, plan)
            order = await self._store.get_order(plan.order_id)
            pin = (order.payload or {}).get("handoff_pin") if plan.handoff == "pin" else None
            runner = self.runners[plan.vehicle_id] = SortieRunner(
                plan, vehicle, fence, self, self._clock, policy=self._policy,
                expected_pin=str(pin) if pin is not None else None, bringing_back=bringing_back,
                early_pins=self._early_pins.pop(plan.order_id, []),
                transfer_lock=self._transfer_locks.setdefault(plan.vehicle_id, asyncio.Lock()))
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
            return
        if state == S.RETURNED:
            await self._after_return(plan, reason or "returned")

    async def _after_return(self, plan: SortiePlan, reason: str) -> None:
        """A parcel is back at the depot: try the order again where the policy says so. A vehicle's
        failure goes back to dispatch at once (another vehicle, or this one recharged); nobody at the
        door gets a new window; a cancellation, or a policy of 'fail', ends it returned."""
        policy = self._policy
        order = await self._store.get_order(plan.order_id)
        if order.state != S.RETURNED:
            return
        if reason in VEHICLE_REASONS and policy.redispatch:
            if order.attempts >= MAX_ATTEMPTS:
                await self._store.append_event("order", plan.order_id, "order.not_retried", {
                    "reason": "attempts_exhausted", "detail": f"{order.attempts} sorties; last: {reason}"})
                return
            await self._store.transition(plan.order_id, S.ACCEPTED, reason=f"retry_after_{reason}",
                                         detail=f"the parcel is back at {plan.depot}; dispatched again")
        elif reason == "handoff_failed" and policy.failed_handoff == "retry" and order.attempts < MAX_ATTEMPTS:
            length = ((order.window_latest - order.window_earliest) if order.window_latest and order.window_earliest
                      else timedelta(hours=1))
            earliest = self._clock.now() + timedelta(seconds=policy.retry_after_s)
            await self._store.transition(plan.order_id, S.ACCEPTED, reason="retry_after_handoff_failed",
                                         detail=f"nobody took the parcel; tried again from {earliest:%H:%M}",
                                         window=(earliest, earliest + length))
        else:
            return
        self._on_vehicle_freed(plan.vehicle_id)  # (wakes dispatch for the order)

    async def order_eta(self, plan: SortiePlan, eta: datetime) -> None:
        await self._store.set_etas({plan.order_id: eta}, states=(S.IN_TRANSIT,))

    async def _give_back(self, plan: SortiePlan, reason: str, detail: str) -> None:
        """The vehicle could not take the parcel: unload it and let dispatch try again, up to a limit."""
        self.resting_until_s[plan.vehicle_id] = self._clock.now().timestamp() + REFUSED_REST_S
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


def _back_reason(state: OrderState, reason: str | None) -> str:
    """Why a parcel still on board is coming back, from its order (a restarted service)."""
    if state == S.CANCELLED:
        return "cancelled"
    return reason or "returning"
