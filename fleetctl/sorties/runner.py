"""One sortie executed: one asyncio task drives one delivery from upload to the vehicle back home.

    planned -> uploading -> starting -> outbound -> delivering -> returning -> landed -> done
                  |            |           |            |
                  +------------+-----------+------------+--> failed (the reason kept)

Progress is read off what PX4 reports (MISSION_CURRENT's seq and state, armed, landed, mode), not
guessed from time, so a restarted service picks a sortie up where the vehicle actually is: the
plan stored with the sortie knows which seq is the drop point and which the hand-off.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from fleetctl.clock import Clock
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sorties.plan import SortiePlan, mission
from vehicles.base import GeofenceItem, LandedState, MissionState, Vehicle, VehicleState
from vehicles.errors import CommandTimeout, GeofenceUploadFailed, LinkLost, MissionUploadFailed, VehicleError

log = logging.getLogger(__name__)

#: A sortie that takes this many times its plan (plus the margin) is declared lost: the operator
#: must look. Vehicle time.
OVERDUE_FACTOR = 3.0
OVERDUE_MARGIN_S = 300.0
#: How long a vehicle may stay silent before the sortie is reported at risk (vehicle seconds).
AT_RISK_AFTER_S = 5.0
#: A release further than this from the drop point does not count as a proof of delivery.
PROOF_RADIUS_M = 15.0
_ABANDON_MODES = frozenset({"RTL", "LAND"})
#: PX4 abandons a mission transfer 5 s after its last message (MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT);
#: an upload refused meanwhile is tried again after that (vehicle seconds), up to this many times.
PX4_TRANSFER_TIMEOUT_S = 5.5
UPLOAD_ATTEMPTS = 3
#: Upload refusals that waiting will not cure: the content itself is wrong.
_FINAL_UPLOAD_RESULTS = frozenset({"INVALID_ARGUMENT", "TOO_MANY_MISSION_ITEMS", "UNSUPPORTED",
                                   "INT_MESSAGES_NOT_SUPPORTED", "MISSION_TYPE_NOT_CONSISTENT"})


class SortiePhase(enum.StrEnum):
    PLANNED = "planned"
    UPLOADING = "uploading"
    STARTING = "starting"
    OUTBOUND = "outbound"
    DELIVERING = "delivering"
    RETURNING = "returning"
    LANDED = "landed"
    DONE = "done"
    FAILED = "failed"


#: Phases in which the vehicle may be moving with our mission.
FLYING = frozenset({SortiePhase.OUTBOUND, SortiePhase.DELIVERING, SortiePhase.RETURNING, SortiePhase.LANDED})
FINISHED = frozenset({SortiePhase.DONE, SortiePhase.FAILED})


class SortieHooks(Protocol):
    """What a sortie tells the rest of the service (the service stores and publishes it)."""

    async def sortie_phase(self, plan: SortiePlan, phase: SortiePhase, detail: str = "") -> None: ...

    async def order_step(self, plan: SortiePlan, state: OrderState, *, reason: str | None = None,
                         detail: str = "", eta: datetime | None = None,
                         proof: dict[str, Any] | None = None) -> None: ...


@dataclass(frozen=True)
class Progress:
    """Where a vehicle stands on a sortie's mission, read from one snapshot."""

    ours: bool  # the vehicle reports our mission (its item count)
    at_drop: bool  # reached the drop point
    handed_off: bool  # the parcel left the vehicle
    complete: bool  # the mission ran to its end
    home: bool  # back and done: a drone landed and disarmed, a rover at the end of its route
    abandoned: bool  # PX4 left the mission for a failsafe (RTL, Land) before the hand-off


def progress(plan: SortiePlan, state: VehicleState) -> Progress:
    m = state.mission
    ours = m.total == plan.mission_total
    complete = ours and m.state == MissionState.COMPLETE
    current = m.current if ours else -1
    handed_off = complete or current > plan.handoff_seq
    at_drop = handed_off or current > plan.drop_seq or (plan.kind == "robot" and current == plan.drop_seq
                                                         and m.state == MissionState.COMPLETE)
    landed = state.landed in (LandedState.ON_GROUND, LandedState.UNKNOWN) and not state.armed
    home = complete and (landed if plan.kind == "drone" else True)
    abandoned = not handed_off and state.mode in _ABANDON_MODES
    return Progress(ours, at_drop, handed_off, complete, home, abandoned)


class SortieFailed(Exception):
    """Why a sortie ended without delivering (carried to the order as its reason)."""

    def __init__(self, reason: str, detail: str, *, parcel_on_board: bool) -> None:
        self.reason = reason
        self.detail = detail
        self.parcel_on_board = parcel_on_board
        super().__init__(f"{reason}: {detail}")


class SortieRunner:
    """Drives one sortie; `run()` returns the final phase. Never raises for a vehicle's failure:
    that is a failed sortie, stored with its reason (and the order handed back or failed)."""

    def __init__(self, plan: SortiePlan, vehicle: Vehicle, fence: Sequence[GeofenceItem], hooks: SortieHooks,
                 clock: Clock) -> None:
        self.plan = plan if plan.mission_total else mission(plan)[1]  # the seqs progress is read by
        self._vehicle = vehicle
        self._fence = list(fence)
        self._hooks = hooks
        self._clock = clock
        self.recall_reason: str | None = None  # set by `recall`: the order was cancelled in flight

    async def recall(self, reason: str) -> None:
        """Bring the vehicle home with the parcel (the order was cancelled): RTL now, or right after
        the start if it has not left yet; the order then goes cancelled -> returning -> returned."""
        self.recall_reason = reason
        if self._vehicle.state.armed:
            await self._vehicle.return_to_launch()

    async def run(self, phase: SortiePhase = SortiePhase.PLANNED) -> SortiePhase:
        plan = self.plan
        try:
            resumed = True
            if phase not in FLYING:
                state = self._vehicle.state
                if state.armed:  # a restart after MISSION_START went out: it is flying our mission
                    phase = SortiePhase.OUTBOUND
                else:
                    await self._launch()
                    phase = SortiePhase.OUTBOUND
                    resumed = False
            if resumed and phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING):
                # A restart between storing a sortie phase and the order's matching step leaves the
                # order a step behind the vehicle (loading while it flies, in transit while it hands
                # over): take those steps now (each a no-op when already taken).
                await self._hooks.order_step(plan, OrderState.IN_TRANSIT)
                if phase == SortiePhase.DELIVERING:
                    await self._hooks.order_step(plan, OrderState.DELIVERING)
            return await self._follow(phase)
        except SortieFailed as e:
            log.warning("sortie %s (%s on %s) failed: %s", plan.sortie_id, plan.order_id, plan.vehicle_id, e)
            await self._hooks.sortie_phase(plan, SortiePhase.FAILED, f"{e.reason}: {e.detail}")
            return SortiePhase.FAILED

    async def _launch(self) -> None:
        plan, vehicle = self.plan, self._vehicle
        await self._hooks.sortie_phase(plan, SortiePhase.UPLOADING)
        await self._hooks.order_step(plan, OrderState.LOADING)
        items, _ = mission(plan)
        try:
            await vehicle.wait_ready(timeout_s=30.0)
            await self._transfer(lambda: vehicle.upload_geofence(self._fence))
            await self._transfer(lambda: vehicle.upload_mission(items))
            await self._hooks.sortie_phase(plan, SortiePhase.STARTING)
            await vehicle.start_mission()
        except VehicleError as e:
            # Nothing left the pad: the parcel is unloaded and the order goes back to dispatch.
            await self._hooks.order_step(plan, OrderState.ACCEPTED, reason="vehicle_refused", detail=str(e))
            raise SortieFailed("vehicle_refused", str(e), parcel_on_board=False) from e
        eta = self._clock.now() + timedelta(seconds=plan.outbound_s)
        await self._hooks.sortie_phase(plan, SortiePhase.OUTBOUND)
        await self._hooks.order_step(plan, OrderState.IN_TRANSIT, eta=eta)
        if self.recall_reason is not None:  # cancelled while it was being loaded
            with contextlib.suppress(VehicleError):
                await vehicle.return_to_launch()

    async def _transfer(self, upload: Callable[[], Awaitable[None]]) -> None:
        """An upload, tried again after PX4's mission-protocol timeout when PX4 is still busy with an
        earlier transfer (seen on real PX4 after a restarted service abandoned one mid-way: "WPM:
        REJ. CMD: Busy" until PX4 gives the old one up, 5 s after its last message)."""
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                await upload()
                return
            except (MissionUploadFailed, GeofenceUploadFailed) as e:
                if attempt == UPLOAD_ATTEMPTS or e.result in _FINAL_UPLOAD_RESULTS:
                    raise
                log.info("sortie %s: upload refused (%s); again in %.0f s", self.plan.sortie_id, e,
                         PX4_TRANSFER_TIMEOUT_S)
                await self._clock.sleep(PX4_TRANSFER_TIMEOUT_S)

    async def _follow(self, phase: SortiePhase) -> SortiePhase:
        """Watch the vehicle fly our mission until it is home, from wherever it is now."""
        plan, vehicle, hooks = self.plan, self._vehicle, self._hooks
        deadline_s = OVERDUE_FACTOR * plan.round_trip_s + OVERDUE_MARGIN_S
        started = self._clock.now()
        at_risk = False
        seen = progress(plan, vehicle.state)
        while True:
            state = await self._next(seen, at_risk)
            if not state.link_alive and not at_risk:
                at_risk = True
                await hooks.sortie_phase(plan, phase, "at risk: link lost, the vehicle's own failsafe acts")
            elif state.link_alive and at_risk:
                at_risk = False
                await hooks.sortie_phase(plan, phase, "link restored")
            seen = progress(plan, state)
            if seen.abandoned and self.recall_reason is not None:
                await hooks.order_step(plan, OrderState.CANCELLED, reason="cancelled", detail=self.recall_reason)
                await hooks.order_step(plan, OrderState.RETURNING)
                await self._wait_home(state)
                await hooks.order_step(plan, OrderState.RETURNED)
                raise SortieFailed("recalled", f"recalled: {self.recall_reason}", parcel_on_board=False)
            if seen.abandoned:
                await hooks.order_step(plan, OrderState.FAILED, reason="vehicle_failsafe",
                                       detail=f"{plan.vehicle_id} switched to {state.mode} before the hand-off")
                await hooks.order_step(plan, OrderState.RETURNING)
                await self._wait_home(state)
                await hooks.order_step(plan, OrderState.RETURNED)
                raise SortieFailed("vehicle_failsafe", f"{state.mode} before the hand-off", parcel_on_board=False)
            if phase == SortiePhase.OUTBOUND and seen.at_drop:
                phase = SortiePhase.DELIVERING
                await hooks.sortie_phase(plan, phase)
                await hooks.order_step(plan, OrderState.DELIVERING)
            if phase == SortiePhase.DELIVERING and seen.handed_off:
                phase = SortiePhase.RETURNING
                await hooks.order_step(plan, OrderState.DELIVERED, proof=self._proof(state))
                await hooks.sortie_phase(plan, phase)
            if phase == SortiePhase.RETURNING and seen.home:
                await hooks.sortie_phase(plan, SortiePhase.LANDED)
                await self._settle(state)
                await hooks.sortie_phase(plan, SortiePhase.DONE)
                return SortiePhase.DONE
            if phase == SortiePhase.LANDED:
                await self._settle(state)
                await hooks.sortie_phase(plan, SortiePhase.DONE)
                return SortiePhase.DONE
            if (self._clock.now() - started).total_seconds() > deadline_s:
                raise SortieFailed("overdue", f"no end after {deadline_s:.0f} s; the operator must look",
                                   parcel_on_board=phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING))

    async def _next(self, last: Progress, at_risk: bool) -> VehicleState:
        """The first snapshot that says something new (progress, or the link), or the current one
        after a while: a silent vehicle changes nothing, yet the deadline must still be looked at."""
        def news(state: VehicleState) -> bool:
            return progress(self.plan, state) != last or state.link_alive == at_risk

        try:
            return await self._vehicle.wait_for(news, AT_RISK_AFTER_S, "sortie progress", fail_on_link_loss=False)
        except CommandTimeout:
            return self._vehicle.state

    async def _wait_home(self, state: VehicleState) -> None:
        with contextlib.suppress(VehicleError):
            await self._vehicle.wait_for(lambda s: not s.armed, OVERDUE_MARGIN_S + self.plan.round_trip_s,
                                         "back home after a failsafe", fail_on_link_loss=False)

    async def _settle(self, state: VehicleState) -> None:
        # PX4's rover holds at the end of its route, armed: disarm it so it can charge.
        if state.armed and self.plan.kind == "robot":
            with contextlib.suppress(CommandTimeout, LinkLost, VehicleError):
                await self._vehicle.disarm()

    def _proof(self, state: VehicleState) -> dict[str, Any]:
        lat, lon = self.plan.out_wgs84[-1]
        proof: dict[str, Any] = {"at": self._clock.now().isoformat(),
                                 "method": "gripper_release" if self.plan.kind == "drone" else "locker"}
        if state.position is not None:
            d = _distance_m(lat, lon, state.position.lat_deg, state.position.lon_deg)
            proof.update(lat_deg=state.position.lat_deg, lon_deg=state.position.lon_deg, distance_m=round(d, 1),
                         within_radius=d <= PROOF_RADIUS_M)
        return proof


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
