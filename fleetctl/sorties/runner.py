"""One sortie executed: one asyncio task drives one delivery from upload to the vehicle back home.

    planned -> uploading -> starting -> outbound -> delivering -> returning -> landed -> done
                  |            |           |            |
                  +------------+-----------+------------+--> failed (the reason kept)

Progress is read off what PX4 reports (MISSION_CURRENT's seq and state, armed, landed, mode), not
guessed from time, so a restarted service picks a sortie up where the vehicle actually is: the
plan stored with the sortie knows which seq is the drop point and which the hand-off.

The hand-off: a drone holds over the drop point and the service commands the release there, so
PX4's COMMAND_ACK confirms it (a jammed gripper is known, and the parcel flies home); the mission's
own release item after the hold is the fallback when no ground station listens. A robot with a PIN
hand-off stops at the drop point (Hold) and waits for the recipient's PIN.

When the parcel has to come back (low battery, a failsafe, a jammed gripper, nobody took it, a
cancellation) the order goes failed/cancelled -> returning, the vehicle comes home with it, and the
order is returned: `SortieHooks.order_step(RETURNED, reason=...)` lets the service try it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from fleetctl.clock import Clock
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sorties.plan import RELEASE_ALT_M, RELEASE_HOLD_S, SortiePlan, mission
from fleetctl.sorties.policy import ContingencySettings
from vehicles.base import GeofenceItem, LandedState, MissionItem, MissionState, Vehicle, VehicleState
from vehicles.errors import (
    CommandRejected,
    CommandTimeout,
    GeofenceUploadFailed,
    LinkLost,
    MissionUploadFailed,
    VehicleError,
)

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
#: A robot with a PIN hand-off stops this close to the drop point (well within PROOF_RADIUS_M).
DOOR_M = 6.0
#: An ETA is told again when it moved by this much (clock seconds); a drone descends at this rate.
ETA_STEP_S = 30.0
DESCENT_M_S = 1.5
#: MISSION_START after a reroute: tried this often, this far apart (vehicle seconds).
START_ATTEMPTS = 3
START_RETRY_S = 1.0
#: How long a rerouted vehicle may take to show the new mission and fly clear of a zone (vehicle s).
REROUTE_WAIT_S = 60.0
#: A release the vehicle refuses is tried this many times before the gripper counts as jammed.
RELEASE_ATTEMPTS = 2
RELEASE_TIMEOUT_S = 5.0
#: Wrong PINs and early ones waiting for a robot are kept up to this many (a bounded queue).
PIN_QUEUE = 8
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

    async def order_eta(self, plan: SortiePlan, eta: datetime) -> None: ...


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
                 clock: Clock, *, policy: ContingencySettings | None = None, expected_pin: str | None = None,
                 bringing_back: str | None = None, early_pins: Sequence[str] = (),
                 transfer_lock: asyncio.Lock | None = None) -> None:
        # One mission/fence transfer at a time to this vehicle (the manager's lock outlives the sortie).
        self._transfer_lock = transfer_lock or asyncio.Lock()
        self.plan = plan if plan.mission_total else mission(plan)[1]  # the seqs progress is read by
        self._vehicle = vehicle
        self._fence = list(fence)
        self._hooks = hooks
        self._clock = clock
        self._policy = policy or ContingencySettings()
        self._expected_pin = expected_pin
        self._pins: asyncio.Queue[str] = asyncio.Queue(PIN_QUEUE)
        for pin in early_pins[-PIN_QUEUE:]:
            self._pins.put_nowait(pin)
        self._release_tried = False
        self._handed_over = False  # the service saw the parcel leave (release confirmed, PIN matched)
        # Why the parcel is coming back, once it is: the order is returned when the vehicle is home.
        self._back_reason: str | None = bringing_back
        self.recall_reason: str | None = None  # set by `recall`: the order was cancelled in flight
        self._watch_battery = False  # outbound with the parcel: a low battery turns the vehicle back
        self._eta: datetime | None = None  # the last ETA told
        self._watch_door = False  # a PIN robot on its way out: it stops when it reaches the door

    async def recall(self, reason: str) -> None:
        """Bring the vehicle home with the parcel (the order was cancelled): RTL now, or right after
        the start if it has not left yet; the order then goes cancelled -> returning -> returned."""
        self.recall_reason = reason
        if self._vehicle.state.armed:
            await self._vehicle.return_to_launch()

    def offer_pin(self, pin: str) -> bool:
        """A PIN from the recipient (orders/<id>/handoff), kept until the robot is at the door (one
        may come in while a restarted service catches up); False when none is expected any more."""
        if self.plan.handoff != "pin" or self._handed_over or self._back_reason is not None:
            return False
        try:
            self._pins.put_nowait(pin)
        except asyncio.QueueFull:
            return False
        return True

    async def hold(self) -> None:
        """Stop where it is (Hold) while its way is planned again; VehicleError if it refuses."""
        await self._vehicle.pause()

    async def reroute(self, items: Sequence[MissionItem], plan: SortiePlan, fence: Sequence[GeofenceItem], *,
                      fence_from_seq: int = 0) -> None:
        """Fly on with a new mission from where the (held) vehicle is: a zone closed its way. The
        order real PX4 needs (fleetctl.sorties.replan): the old fence off (else PX4 checks the old
        mission against the new fence, or the new mission against the old one, and holds), the new
        mission up, the new fence once the vehicle flies the new mission clear of every zone, then
        MISSION_START unless it already flies it. VehicleError if the vehicle refuses a step."""
        vehicle = self._vehicle
        await vehicle.clear_geofence()
        await self._transfer(lambda: vehicle.upload_mission(list(items)))
        self.plan = plan
        await vehicle.wait_for(lambda s: s.mission.total == plan.mission_total and s.mission.current >= fence_from_seq,
                               REROUTE_WAIT_S, "the rerouted mission under way", fail_on_link_loss=False)
        await self._transfer(lambda: vehicle.upload_geofence(list(fence)))
        self._fence = list(fence)
        if vehicle.state.mode != "MISSION":
            await self._start_checked()

    async def _start_checked(self) -> None:
        """MISSION_START once PX4 has checked the mission against the new fence: it denies the start
        ("No valid mission") while that check is pending, so one denial is tried again."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self._vehicle.start_mission()
                return
            except CommandRejected:
                if attempt == START_ATTEMPTS:
                    raise
                await self._clock.sleep(START_RETRY_S)

    async def resume_any(self) -> None:
        """After a reroute that failed half-way: fly whatever mission the vehicle holds now rather
        than hover until its battery runs out (the sortie is marked at risk for the operator)."""
        with contextlib.suppress(VehicleError):
            await self._start_checked()

    @property
    def vehicle_state(self) -> VehicleState:
        return self._vehicle.state

    async def wait_vehicle(self, predicate: Callable[[VehicleState], bool], timeout_s: float, what: str) -> VehicleState:
        return await self._vehicle.wait_for(predicate, timeout_s, what, fail_on_link_loss=False)

    @property
    def parcel_delivered(self) -> bool:
        """The parcel has left the vehicle (or is coming back: then it counts as no longer to deliver)."""
        return self._handed_over or self._back_reason is not None or progress(self.plan, self._vehicle.state).handed_off

    async def abandon_delivery(self, reason: str, detail: str) -> None:
        """Give the delivery up in flight (the drop point closed): the order fails with the parcel on
        board, which comes home; the caller gives the vehicle its way home."""
        await self._bring_back(OrderState.FAILED, reason, detail)

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
            if resumed and phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING) and self._back_reason is None:
                # A restart between storing a sortie phase and the order's matching step leaves the
                # order a step behind the vehicle (loading while it flies, in transit while it hands
                # over): take those steps now (each a no-op when already taken).
                await self._hooks.order_step(plan, OrderState.IN_TRANSIT)
                if phase == SortiePhase.DELIVERING:
                    await self._hooks.order_step(plan, OrderState.DELIVERING)
            if self._back_reason is not None:
                phase = SortiePhase.RETURNING
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
                async with self._transfer_lock:
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
        vehicle, hooks = self._vehicle, self._hooks
        deadline_s = OVERDUE_FACTOR * self.plan.round_trip_s + OVERDUE_MARGIN_S + self._policy.handoff_timeout_s
        started = self._clock.now()
        at_risk = False
        seen = progress(self.plan, vehicle.state)
        while True:
            self._watch_battery = (phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING)
                                   and self._back_reason is None and not seen.handed_off)
            self._watch_door = (phase == SortiePhase.OUTBOUND and self.plan.handoff == "pin"
                                and self.plan.kind == "robot" and self._back_reason is None)
            state = await self._next(seen, at_risk)
            plan = self.plan  # (a reroute replaces it)
            if not state.link_alive and not at_risk:
                at_risk = True
                await hooks.sortie_phase(plan, phase, "at risk: link lost, the vehicle's own failsafe acts")
            elif state.link_alive and at_risk:
                at_risk = False
                await hooks.sortie_phase(plan, phase, "link restored")
            seen = progress(plan, state)
            if self._back_reason is not None:
                if self._home(seen, state):
                    return await self._returned(state)
            elif seen.abandoned:
                if self.recall_reason is not None:
                    await self._bring_back(OrderState.CANCELLED, "cancelled", self.recall_reason)
                else:
                    await self._bring_back(OrderState.FAILED, "vehicle_failsafe",
                                           f"{plan.vehicle_id} switched to {state.mode} before the hand-off")
                phase = SortiePhase.RETURNING
                continue
            elif phase in (SortiePhase.OUTBOUND, SortiePhase.DELIVERING) and not seen.handed_off \
                    and (short := self._battery_short(state)) is not None:
                await self._bring_back(OrderState.FAILED, "low_battery", short, rtl=True)
                phase = SortiePhase.RETURNING
                continue
            if phase == SortiePhase.OUTBOUND and self._back_reason is None and not seen.at_drop:
                await self._update_eta(state)
            if self._at_the_door(phase, seen, state):
                seen = replace(seen, at_drop=True)  # a PIN hand-off stops at the door, not past it
            if phase == SortiePhase.OUTBOUND and seen.at_drop and self._back_reason is None:
                phase = SortiePhase.DELIVERING
                await hooks.sortie_phase(plan, phase)
                await hooks.order_step(plan, OrderState.DELIVERING)
            if phase == SortiePhase.DELIVERING and self._back_reason is None:
                if plan.kind == "drone" and state.mission.current == plan.hold_seq and seen.ours \
                        and not self._release_tried:
                    await self._release(state)
                elif plan.kind == "robot" and plan.handoff == "pin" and not self._handed_over \
                        and (seen.at_drop or self._near_drop(state)):
                    await self._hand_over_by_pin(state)
                if self._back_reason is not None:
                    phase = SortiePhase.RETURNING
                    await hooks.sortie_phase(plan, phase, f"bringing the parcel back: {self._back_reason}")
                elif self._handed_over or (seen.handed_off and plan.handoff != "pin"):
                    phase = SortiePhase.RETURNING
                    if not self._handed_over:  # the mission's own release: no word from the gripper
                        await hooks.order_step(plan, OrderState.DELIVERED, proof=self._proof(state, confirmed=False))
                    await hooks.sortie_phase(plan, phase)
            if phase == SortiePhase.RETURNING and self._back_reason is None and seen.home:
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

    def _near_drop(self, state: VehicleState) -> bool:
        if state.position is None:
            return False
        lat, lon = self.plan.out_wgs84[-1]
        return _distance_m(lat, lon, state.position.lat_deg, state.position.lon_deg) <= DOOR_M

    def _at_the_door(self, phase: SortiePhase, seen: Progress, state: VehicleState) -> bool:
        """A PIN robot heading for the drop point counts as there within DOOR_M: it is told to hold
        at once (reaching the waypoint first, the stop would come metres past it)."""
        plan = self.plan
        return (phase == SortiePhase.OUTBOUND and plan.kind == "robot" and plan.handoff == "pin"
                and self._back_reason is None and seen.ours and not seen.at_drop
                and state.mission.current == plan.drop_seq and self._near_drop(state))

    async def _update_eta(self, state: VehicleState) -> None:
        """The order's ETA from where the vehicle is now: what is left of the way out at cruise
        speed, plus the descent and hold over the drop point. Stored when it moved by ETA_STEP_S."""
        plan = self.plan
        if state.position is None or len(plan.out_wgs84) < 2:
            return
        left_m = _left_m(plan.out_wgs84, state.position.lat_deg, state.position.lon_deg)
        extra_s = (plan.cruise_alt_m - RELEASE_ALT_M) / DESCENT_M_S + RELEASE_HOLD_S if plan.kind == "drone" else 0.0
        eta = self._clock.now() + timedelta(seconds=left_m / max(plan.speed_m_s, 0.1) + max(extra_s, 0.0))
        if self._eta is None or abs((eta - self._eta).total_seconds()) >= ETA_STEP_S:
            self._eta = eta
            await self._hooks.order_eta(plan, eta)

    # ---- the hand-off ----

    async def _release(self, state: VehicleState) -> None:
        """Command the release in the hold over the drop point: ACCEPTED is the gripper's word that
        the parcel is gone; refused every time is a jammed gripper (the parcel flies home). No answer
        (link, timeout) leaves it to the mission's own release item."""
        self._release_tried = True
        plan = self.plan
        for attempt in range(1, RELEASE_ATTEMPTS + 1):
            try:
                await self._vehicle.release_payload(timeout_s=RELEASE_TIMEOUT_S)
            except CommandRejected as e:
                if attempt < RELEASE_ATTEMPTS:
                    log.info("sortie %s: release refused (%s); trying again", plan.sortie_id, e)
                    continue
                await self._bring_back(OrderState.FAILED, "gripper_jam",
                                       f"the gripper refused the release {RELEASE_ATTEMPTS} times: {e}")
                return
            except VehicleError as e:
                log.info("sortie %s: no answer to the release (%s); the mission's own release goes on",
                         plan.sortie_id, e)
                return
            self._handed_over = True
            await self._hooks.order_step(plan, OrderState.DELIVERED,
                                         proof=self._proof(self._vehicle.state, confirmed=True))
            return

    async def _hand_over_by_pin(self, state: VehicleState) -> None:
        """Stop at the drop point and wait for the recipient's PIN; the parcel comes back when it
        does not come in time or is wrong too often."""
        plan, policy = self.plan, self._policy
        with contextlib.suppress(VehicleError):
            await self._vehicle.pause()
        await self._hooks.sortie_phase(plan, SortiePhase.DELIVERING, "waiting for the recipient's PIN")
        wrong = 0
        deadline = self._clock.now() + timedelta(seconds=policy.handoff_timeout_s)
        why = f"nobody entered the PIN within {policy.handoff_timeout_s:.0f} s"
        while (left_s := (deadline - self._clock.now()).total_seconds()) > 0:
            try:
                async with asyncio.timeout(self._clock.wall_s(left_s)):
                    pin = await self._pins.get()
            except TimeoutError:
                break
            if self._expected_pin is not None and hmac.compare_digest(pin.encode(), self._expected_pin.encode()):
                self._handed_over = True
                proof = self._proof(self._vehicle.state, confirmed=True)
                proof["method"] = "pin"
                await self._hooks.order_step(plan, OrderState.DELIVERED, proof=proof)
                break
            wrong += 1
            await self._hooks.sortie_phase(plan, SortiePhase.DELIVERING,
                                           f"wrong PIN ({wrong} of {policy.handoff_pin_attempts})")
            if wrong >= policy.handoff_pin_attempts:
                why = f"{wrong} wrong PINs"
                break
        if not self._handed_over:
            await self._bring_back(OrderState.FAILED, "handoff_failed", why)
        with contextlib.suppress(VehicleError):
            await self._vehicle.resume()

    # ---- the parcel comes back ----

    async def _bring_back(self, state: OrderState, reason: str, detail: str, *, rtl: bool = False) -> None:
        """The order fails (or is cancelled) with the parcel on board, which comes home with the vehicle."""
        plan = self.plan
        log.info("sortie %s: order %s comes back: %s: %s", plan.sortie_id, plan.order_id, reason, detail)
        self._back_reason = reason
        await self._hooks.order_step(plan, state, reason=reason, detail=detail)
        await self._hooks.order_step(plan, OrderState.RETURNING, reason=reason)
        if rtl:
            with contextlib.suppress(VehicleError):
                await self._vehicle.return_to_launch()

    def _home(self, seen: Progress, state: VehicleState) -> bool:
        return seen.home or (not state.armed and state.landed in (LandedState.ON_GROUND, LandedState.UNKNOWN))

    async def _returned(self, state: VehicleState) -> SortiePhase:
        plan, reason = self.plan, self._back_reason or "returned"
        await self._settle(state)
        await self._hooks.order_step(plan, OrderState.RETURNED, reason=reason)
        raise SortieFailed(reason, f"{reason}: the parcel is back at {plan.depot}", parcel_on_board=False)

    def _battery_short(self, state: VehicleState) -> str | None:
        """Why the vehicle must turn back now: its charge is below what the rest of the sortie needs
        plus its reserve, by more than the tolerance. None while it has enough (or nothing is known)."""
        plan, pct = self.plan, state.battery_percent
        if pct is None or plan.battery_wh <= 0.0 or plan.mission_total <= 0:
            return None
        done = min(max(state.mission.current, 0), plan.mission_total) / plan.mission_total \
            if state.mission.total == plan.mission_total else 0.0
        need_pct = plan.reserve_percent + 100.0 * plan.energy_wh * (1.0 - done) / plan.battery_wh
        if pct + self._policy.low_battery_margin_percent >= need_pct:
            return None
        return f"{pct:.0f} % left; the rest of the sortie and the reserve need {need_pct:.0f} %"

    async def _next(self, last: Progress, at_risk: bool) -> VehicleState:
        """The first snapshot that says something new (progress, or the link), or the current one
        after a while: a silent vehicle changes nothing, yet the deadline must still be looked at."""
        def news(state: VehicleState) -> bool:
            return progress(self.plan, state) != last or state.link_alive == at_risk or (
                self._watch_battery and self._battery_short(state) is not None) or (
                self._watch_door and self._near_drop(state))

        try:
            return await self._vehicle.wait_for(news, AT_RISK_AFTER_S, "sortie progress", fail_on_link_loss=False)
        except CommandTimeout:
            return self._vehicle.state

    async def _settle(self, state: VehicleState) -> None:
        # PX4's rover holds at the end of its route, armed: disarm it so it can charge.
        if state.armed and self.plan.kind == "robot":
            with contextlib.suppress(CommandTimeout, LinkLost, VehicleError):
                await self._vehicle.disarm()

    def _proof(self, state: VehicleState, *, confirmed: bool) -> dict[str, Any]:
        lat, lon = self.plan.out_wgs84[-1]
        proof: dict[str, Any] = {"at": self._clock.now().isoformat(),
                                 "method": "gripper_release" if self.plan.kind == "drone" else "locker"}
        if self.plan.kind == "drone":
            proof["gripper_confirmed"] = confirmed
        if state.position is not None:
            d = _distance_m(lat, lon, state.position.lat_deg, state.position.lon_deg)
            proof.update(lat_deg=state.position.lat_deg, lon_deg=state.position.lon_deg, distance_m=round(d, 1),
                         within_radius=d <= PROOF_RADIUS_M)
        return proof


def _left_m(path_wgs84: Sequence[tuple[float, float]], lat: float, lon: float) -> float:
    """What is left of a path from the point on it nearest to (lat, lon), in metres (a local flat
    frame is exact enough over a delivery's few kilometres)."""
    lat0, lon0 = path_wgs84[0]
    k = math.cos(math.radians(lat0))

    def xy(a: float, b: float) -> tuple[float, float]:
        return (math.radians(b - lon0) * k * 6_371_000.0, math.radians(a - lat0) * 6_371_000.0)

    pts = [xy(a, b) for a, b in path_wgs84]
    px, py = xy(lat, lon)
    best_d, best_left = math.inf, 0.0
    tail = 0.0  # path length after segment i's end
    for i in range(len(pts) - 2, -1, -1):
        (ax, ay), (bx, by) = pts[i], pts[i + 1]
        seg = math.hypot(bx - ax, by - ay)
        t = 0.0 if seg == 0.0 else max(0.0, min(1.0, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / seg ** 2))
        qx, qy = ax + t * (bx - ax), ay + t * (by - ay)
        d = math.hypot(px - qx, py - qy)
        if d < best_d:
            best_d, best_left = d, tail + (1.0 - t) * seg + d
        tail += seg
    return best_left


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
