"""One PX4 vehicle behind the fleet's MAVSDK instance: commands that return once PX4 did them.

Which MAVSDK piece does what, and why:
- Action: arm, disarm, land, return. MAVSDK fills the "unset" NaN parameters, which MavlinkDirect's
  JSON cannot carry.
- MavlinkDirect for goto: MAVSDK's goto_location sends DO_REPOSITION in MAV_FRAME_GLOBAL, which PX4
  refuses; PX4 wants COMMAND_INT in GLOBAL_INT with an AMSL altitude.
- MavlinkDirect for DO_SET_MODE (pause = Hold, resume = Mission): PX4 ACKs DO_SET_MODE even when it
  does not switch, so every mode change is confirmed by the HEARTBEAT's custom_mode instead.
- MavlinkDirect for MISSION_START: MAVSDK's start_mission is a mode switch, which PX4 accepts and
  ignores for an infeasible mission; MISSION_START is DENIED with "Mission start denied! ..." and,
  on a valid mission, arms the vehicle itself.
- MavlinkDirect for DO_GRIPPER: PX4 answers IN_PROGRESS then ACCEPTED, and we want its MAV_RESULT.
- MissionRaw for mission and fence upload (PX4's own item encoding, see `vehicles.px4`), Geofence
  for clearing the fence.
- Parameters: our own PARAM_* frames on the fleet's socket (`_params`), not MAVSDK's Param plugin.
Reasons: PX4 explains refusals only in STATUSTEXT (to a GCS-type peer, which our MAVSDK
configuration is); they are attached to `CommandRejected.reason`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mavsdk.plugins.action import Action, ActionResult
from mavsdk.plugins.geofence import Geofence, GeofenceResult
from mavsdk.plugins.mavlink_direct import (
    MavlinkDirect,
    MavlinkDirectError,
    MavlinkDirectResult,
    MavlinkMessage,
)
from mavsdk.plugins.mission_raw import MissionItem as RawMissionItem
from mavsdk.plugins.mission_raw import MissionRaw, MissionRawResult
from mavsdk.plugins.telemetry import Telemetry

from vehicles import px4
from vehicles.base import (
    GeofenceItem,
    MissionItem,
    MissionState,
    TakeOff,
    VehicleEvent,
    VehicleKind,
    VehicleState,
)
from vehicles.errors import (
    CommandRejected,
    CommandTimeout,
    GeofenceUploadFailed,
    LinkLost,
    MissionUploadFailed,
    NotReady,
)
from vehicles.mavsdk_backend._bridge import call_with_callback
from vehicles.mavsdk_backend._params import ParamClient
from vehicles.mavsdk_backend._telemetry import Tracker
from vehicles.streams import Subscription

if TYPE_CHECKING:
    from vehicles.base import Vehicle
    from vehicles.mavsdk_backend.fleet import MavsdkFleet

log = logging.getLogger(__name__)

AUTOPILOT_COMPONENT_ID = 1  # PX4's autopilot component
_HOLD = px4.mode_number("HOLD")
_MISSION = px4.mode_number("MISSION")
_RTL = px4.mode_number("RTL")
_LAND = px4.mode_number("LAND")
# Default timeouts in vehicle seconds (divided by the fleet's speed factor, with a wall floor).
COMMAND_TIMEOUT_S = 10.0
CONFIRM_TIMEOUT_S = 5.0  # PX4 shows a new mode in its next 1 Hz HEARTBEAT
UPLOAD_TIMEOUT_S = 30.0
MISSION_CHECK_TIMEOUT_S = 3.0  # PX4 reports a checked mission in its next 1 Hz MISSION_CURRENT
# What MISSION_CURRENT.mission_state reads once PX4's navigator found the mission valid (it says
# NO_MISSION while `mission_result.valid` is false; COMPLETE may be the previous mission's).
_CHECKED_VALID = frozenset({MissionState.NOT_STARTED, MissionState.ACTIVE, MissionState.PAUSED})
PARAM_RETRY_S = 1.0  # PARAM_SET / PARAM_REQUEST_READ repeated like QGC does (vehicle seconds)


@dataclass(frozen=True, slots=True)
class _UploadedMission:
    started_at: float  # time.monotonic() when the upload began (PX4's complaints come from then on)
    acked_at: float  # and when PX4 ACKed it (its MISSION_CURRENT counts the new items from then on)
    count: int  # items as PX4 stores them


class MavsdkVehicle:
    """A `vehicles.base.Vehicle` on MAVSDK. Created by `MavsdkFleet` when its system id is heard."""

    def __init__(self, fleet: MavsdkFleet, system: Any, vehicle_id: str, sysid: int, kind: VehicleKind) -> None:
        self._fleet = fleet
        self._system = system  # the mavsdk (ctypes) System; plugins below keep it alive
        self._vehicle_id = vehicle_id
        self._sysid = sysid
        self._action = Action(system)
        self._direct = MavlinkDirect(system)
        self._mission = MissionRaw(system)
        self._geofence = Geofence(system)
        self._telemetry = Telemetry(system)
        self._params: ParamClient | None = None  # made on first use
        self._last_mission: _UploadedMission | None = None
        self._last_mission_valid = False  # PX4 reported `_last_mission` checked and valid
        self._tracker = Tracker(vehicle_id, sysid, kind, fleet._inbox, fleet._dirty, self._on_link_restored,
                                fleet._events, on_heartbeat=lambda: fleet._answer_heartbeat(sysid))
        self._tracker.subscribe(self._telemetry, self._direct)
        self._introduce()

    def _introduce(self) -> None:
        # MAVSDK's own 1 Hz GCS heartbeat may come up to a second after discovery, and until PX4
        # has seen one it keeps its STATUSTEXTs (our refusal reasons) to itself: say hello now.
        hello = {"type": px4.MAV_TYPE_GCS, "autopilot": 8, "base_mode": 0, "custom_mode": 0,
                 "system_status": 4, "mavlink_version": 3}
        try:
            self._direct.send_message(MavlinkMessage("HEARTBEAT", 0, 0, 0, 0, json.dumps(hello)))
        except MavlinkDirectError as e:
            log.info("%s: early GCS heartbeat not sent: %s", self._vehicle_id, e)

    def native_callbacks(self) -> list[object]:
        """The ctypes callback trampolines MAVSDK may still call: see `MavsdkFleet._shutdown`."""
        refs: list[object] = []
        for owner in (self._action, self._direct, self._mission, self._geofence, self._telemetry, self._system):
            # mavsdk 4.1.0 keeps them in these (private) containers; read defensively.
            refs.extend(list(getattr(owner, "_callbacks", ())))
            refs.extend(list(getattr(owner, "_subscriptions", {}).values()))
        return refs

    # ---- identity and state ----

    @property
    def vehicle_id(self) -> str:
        return self._vehicle_id

    @property
    def sysid(self) -> int:
        return self._sysid

    @property
    def kind(self) -> VehicleKind:
        return self._tracker.snap.kind

    @property
    def state(self) -> VehicleState:
        return self._tracker.current()

    def states(self) -> AsyncIterator[VehicleState]:
        return self._tracker.snapshots.changes()

    def events(self) -> Subscription[VehicleEvent]:
        return self._tracker.events.subscribe()

    def __repr__(self) -> str:
        s = self._tracker.snap
        return f"<MavsdkVehicle {self._vehicle_id} sysid={self._sysid} {s.kind} {s.mode} armed={s.armed}>"

    async def wait_for(self, predicate: Callable[[VehicleState], bool], timeout_s: float,
                       what: str = "condition", *, fail_on_link_loss: bool = True) -> VehicleState:
        """Until `predicate(state)` holds. Raises CommandTimeout, or LinkLost if heartbeats stop
        first (unless `fail_on_link_loss` is false)."""
        wall_s = self._wall_s(timeout_s)
        try:
            async with asyncio.timeout(wall_s), contextlib.aclosing(self._tracker.snapshots.changes()) as snaps:
                async for snap in snaps:
                    if predicate(snap):
                        return snap
                    if fail_on_link_loss and not snap.link_alive and self._tracker.heartbeats:
                        raise LinkLost(self._vehicle_id)
        except TimeoutError:
            raise CommandTimeout(what, timeout_s) from None
        raise AssertionError("unreachable: snapshot stream ended")  # pragma: no cover

    async def wait_ready(self, timeout_s: float = 30.0) -> VehicleState:
        return await self.wait_for(
            lambda s: s.link_alive and s.position is not None and s.home is not None, timeout_s,
            "wait_ready (position, home and link)")

    # ---- commands ----

    async def arm(self, *, timeout_s: float | None = None) -> None:
        t0 = await self._action_call("arm", px4.MAV_CMD_COMPONENT_ARM_DISARM, self._action.arm_async, timeout_s)
        await self._confirm("arm", lambda s: s.armed, t0)

    async def disarm(self, *, timeout_s: float | None = None) -> None:
        t0 = await self._action_call("disarm", px4.MAV_CMD_COMPONENT_ARM_DISARM, self._action.disarm_async, timeout_s)
        await self._confirm("disarm", lambda s: not s.armed, t0)

    async def land(self, *, timeout_s: float | None = None) -> None:
        t0 = await self._action_call("land", px4.MAV_CMD_NAV_LAND, self._action.land_async, timeout_s)
        await self._confirm("land", lambda s: s.custom_mode == _LAND, t0)

    async def return_to_launch(self, *, timeout_s: float | None = None) -> None:
        t0 = await self._action_call("return_to_launch", px4.MAV_CMD_NAV_RETURN_TO_LAUNCH,
                                     self._action.return_to_launch_async, timeout_s)
        await self._confirm("return_to_launch", lambda s: s.custom_mode == _RTL, t0)

    async def goto(self, lat: float, lon: float, alt_m: float, *, timeout_s: float | None = None) -> None:
        snap = self._tracker.snap
        if snap.home is None or snap.position is None:
            raise NotReady(self._vehicle_id, "position or home unknown (goto altitudes are above home)")
        alt_amsl_m = snap.home.alt_amsl_m + (alt_m if self.kind == "drone" else 0.0)
        # MAVSDK's goto_location sends DO_REPOSITION in MAV_FRAME_GLOBAL, which PX4 refuses
        # (COMMAND_UNSUPPORTED_MAV_FRAME): PX4 takes COMMAND_INT in GLOBAL_INT only, z AMSL.
        # MavlinkDirect's JSON cannot carry NaN ("keep yaw"), so face the direction of travel.
        yaw_rad = _bearing_rad(snap.position.lat_deg, snap.position.lon_deg, lat, lon)
        fields = {"frame": px4.MAV_FRAME_GLOBAL_INT, "current": 0, "autocontinue": 0,
                  "param1": -1.0, "param2": 1.0, "param3": 0.0, "param4": yaw_rad,  # default speed, to Hold
                  "x": round(lat * 1e7), "y": round(lon * 1e7), "z": alt_amsl_m}
        t0 = await self._send_command("goto", "COMMAND_INT", px4.MAV_CMD_DO_REPOSITION, fields, timeout_s)
        await self._confirm("goto", lambda s: s.custom_mode == _HOLD, t0)

    async def pause(self, *, timeout_s: float | None = None) -> None:
        await self.set_mode("HOLD", timeout_s=timeout_s)

    async def resume(self, *, timeout_s: float | None = None) -> None:
        await self.set_mode("MISSION", timeout_s=timeout_s)

    async def set_mode(self, name: str, *, timeout_s: float | None = None) -> None:
        """DO_SET_MODE, confirmed by the HEARTBEAT (PX4 ACKs modes it does not take)."""
        target = px4.mode_number(name)
        main_mode, sub_mode = px4.decode_mode(target)
        what = f"set_mode {name.upper()}"
        t0 = await self._command_long(what, px4.MAV_CMD_DO_SET_MODE,
                                      (px4.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, main_mode, sub_mode), timeout_s)
        await self._confirm(what, lambda s: s.custom_mode == target, t0)

    async def start_mission(self, *, timeout_s: float | None = None) -> None:
        """MISSION_START from the first item; PX4 arms by itself when disarmed.

        PX4 ACKs an upload before its navigator has checked the mission, and denies a MISSION_START
        that comes before the check ("Mission start denied! No valid mission"). So after an upload
        this first waits for PX4's own word (see `_await_mission_check`). A mission PX4 finds
        infeasible is still sent MISSION_START, so that the refusal is PX4's verdict: CommandRejected
        (DENIED) with PX4's reasons since the upload, e.g. "Geofence violation for waypoint 3"."""
        await self._await_mission_check()
        try:
            t0 = await self._command_long("start_mission", px4.MAV_CMD_MISSION_START, (0, 0), timeout_s)
        except CommandRejected as e:
            if self._last_mission is None:
                raise
            # PX4 explained the infeasibility when the mission arrived, before this refusal
            reasons = self._tracker.reasons_since(self._last_mission.started_at)
            raise CommandRejected(e.command, e.result, reasons) from None
        await self._confirm(
            "start_mission",
            lambda s: s.armed and (s.custom_mode == _MISSION or s.mission.state == MissionState.COMPLETE), t0)

    async def release_payload(self, *, timeout_s: float | None = None) -> None:
        await self._command_long("release_payload", px4.MAV_CMD_DO_GRIPPER,
                                 (1, px4.GRIPPER_ACTION_RELEASE), timeout_s)

    async def request_message(self, message_id: int, *, timeout_s: float | None = None) -> None:
        await self._command_long(f"request_message {message_id}", px4.MAV_CMD_REQUEST_MESSAGE, (message_id,),
                                 timeout_s)

    async def set_param(self, name: str, value: int | float, *, timeout_s: float | None = None) -> None:
        """Set a parameter and return once the vehicle echoes the new value. The value is sent in
        the parameter's type on the vehicle (learned by a read first; an int value for an INT32
        parameter, a float for REAL32). CommandRejected: UNKNOWN_PARAM (PX4's PARAM_ERROR), WRONG_TYPE,
        VALUE_NOT_TAKEN; CommandTimeout or LinkLost without an answer."""
        what = f"set_param {name}"
        params = self._param_client()
        timeout_s = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(self._wall_s(timeout_s)):
                await params.write(name, value, self._wall_s(PARAM_RETRY_S, floor_s=0.1))
        except TimeoutError:
            raise self._lost_or(CommandTimeout(what, timeout_s)) from None

    async def get_param(self, name: str, *, timeout_s: float | None = None) -> float:
        """A parameter's value on the vehicle (an INT32 one as a whole float). CommandRejected when
        the vehicle answers PARAM_ERROR; CommandTimeout (or LinkLost) when it does not answer."""
        what = f"get_param {name}"
        params = self._param_client()
        timeout_s = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(self._wall_s(timeout_s)):
                answer = await params.read(name, self._wall_s(PARAM_RETRY_S, floor_s=0.1))
        except TimeoutError:
            raise self._lost_or(CommandTimeout(what, timeout_s)) from None
        assert answer is not None  # unlimited attempts: only the timeout ends them
        return float(answer.value)

    def _param_client(self) -> ParamClient:
        self._require_link()
        if self._params is None:
            link = self._fleet._link
            if link is None:
                raise NotReady(self._vehicle_id, "parameters need the fleet's own UDP socket (a udpin:// URL)")
            self._params = ParamClient(link, self._sysid)
        return self._params

    # ---- mission and fence ----

    async def upload_mission(self, items: Sequence[MissionItem], *, timeout_s: float | None = None) -> None:
        snap = self._tracker.snap
        takeoff_at = (snap.position.lat_deg, snap.position.lon_deg) if snap.position else None
        if takeoff_at is None and any(isinstance(i, TakeOff) for i in items):
            raise NotReady(self._vehicle_id, "position unknown (a TakeOff item takes off from here)")
        raw = px4.mission_items(items, self.kind, takeoff_at=takeoff_at)
        self._last_mission, self._last_mission_valid = None, False
        started_at = time.monotonic()
        await self._upload("mission", self._mission.upload_mission_async, raw, timeout_s)
        self._last_mission = _UploadedMission(started_at, time.monotonic(), len(raw))

    async def clear_mission(self, *, timeout_s: float | None = None) -> None:
        self._last_mission, self._last_mission_valid = None, False
        await self._transfer("clear mission", self._mission.clear_mission_async, timeout_s, MissionUploadFailed)

    async def _await_mission_check(self) -> None:
        """Until PX4 reports the last uploaded mission checked and valid: a MISSION_CURRENT received
        after the upload's ACK that counts our items in a state other than NO_MISSION (PX4's
        mavlink_mission.cpp: NO_MISSION while the navigator's `mission_result.valid` is false).

        Returns early, leaving the verdict to MISSION_START, when PX4 does not report a mission state
        at all (older PX4); also after MISSION_CHECK_TIMEOUT_S of reports that still say NO_MISSION
        (an invalid mission: MISSION_START is then denied with PX4's own words). An error text alone
        is no verdict: a fence uploaded just before re-checks the *previous* mission ("Geofence
        violation for waypoint 3"), and that text can reach us after this upload began (seen in a
        demo day: the start went out before the new mission was checked and was denied).
        CommandTimeout (or LinkLost) when no report came at all."""
        pending = self._last_mission
        if pending is None or self._last_mission_valid:
            return
        heard = False
        reports = self._tracker.mission_reports.changes()
        try:
            async with asyncio.timeout(self._wall_s(MISSION_CHECK_TIMEOUT_S)), contextlib.aclosing(reports):
                async for at, progress in reports:
                    if at < pending.acked_at:
                        continue
                    heard = True
                    if progress.total == pending.count and progress.state in _CHECKED_VALID:
                        self._last_mission_valid = True
                        return
                    if progress.state == MissionState.UNKNOWN:
                        return
        except TimeoutError:
            if not heard:
                raise self._lost_or(CommandTimeout("start_mission (PX4's mission check)",
                                                   MISSION_CHECK_TIMEOUT_S)) from None

    async def upload_geofence(self, fence: Sequence[GeofenceItem], *, timeout_s: float | None = None) -> None:
        raw = px4.fence_items(fence)
        await self._upload("geofence", self._mission.upload_geofence_async, raw, timeout_s)

    async def clear_geofence(self, *, timeout_s: float | None = None) -> None:
        await self._transfer("clear geofence", self._geofence.clear_geofence_async, timeout_s, GeofenceUploadFailed)

    async def _upload(self, what: str, start: Callable[..., None], raw: Sequence[px4.RawItem],
                      timeout_s: float | None) -> None:
        items = [RawMissionItem(r.seq, r.frame, r.command, r.current, r.autocontinue, r.param1, r.param2,
                                r.param3, r.param4, r.x, r.y, r.z, r.mission_type) for r in raw]
        error = MissionUploadFailed if what == "mission" else GeofenceUploadFailed
        await self._transfer(f"upload {what}", lambda cb: start(items, cb), timeout_s, error)

    async def _transfer(self, what: str, start: Callable[[Callable[..., None]], object], timeout_s: float | None,
                        error: type[MissionUploadFailed] | type[GeofenceUploadFailed]) -> None:
        self._require_link()
        timeout_s = UPLOAD_TIMEOUT_S if timeout_s is None else timeout_s
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self._wall_s(timeout_s)):
                (result,) = await call_with_callback(start)
        except TimeoutError:
            raise self._lost_or(error("TIMEOUT", f"{what}: no answer within {timeout_s:.0f} s")) from None
        if result not in (MissionRawResult.SUCCESS, GeofenceResult.SUCCESS):
            if not self._tracker.snap.link_alive:
                raise LinkLost(self._vehicle_id)
            reason = await self._reason(t0)
            raise error(result.name, reason)

    # ---- plumbing ----

    async def _action_call(self, what: str, command: int, start: Callable[[Callable[..., None]], object],
                           timeout_s: float | None) -> float:
        """Run an Action `*_async` call; returns when ACCEPTED (time sent), raises otherwise."""
        self._require_link()
        timeout_s = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self._wall_s(timeout_s)):
                (result,) = await call_with_callback(start)
        except TimeoutError:
            raise self._lost_or(CommandTimeout(what, timeout_s)) from None
        if result == ActionResult.SUCCESS:
            return t0
        if result in (ActionResult.NO_SYSTEM, ActionResult.CONNECTION_ERROR) or not self._tracker.snap.link_alive:
            raise LinkLost(self._vehicle_id)
        if result == ActionResult.TIMEOUT:
            raise CommandTimeout(what, timeout_s)
        reason = await self._reason(t0)
        ack = self._tracker.ack_since(command, t0)
        raise CommandRejected(what, result.name if ack is None else px4.result_name(ack), reason)

    async def _command_long(self, what: str, command: int, params: Sequence[float],
                            timeout_s: float | None) -> float:
        fields: dict[str, float] = {"confirmation": 0}
        for i in range(7):
            fields[f"param{i + 1}"] = float(params[i]) if i < len(params) else 0.0
        return await self._send_command(what, "COMMAND_LONG", command, fields, timeout_s)

    async def _send_command(self, what: str, message_name: str, command: int, fields: dict[str, float],
                            timeout_s: float | None) -> float:
        """COMMAND_LONG/INT via MavlinkDirect; waits for the final ACK (past IN_PROGRESS).
        Returns when ACCEPTED (the time it was sent), raises otherwise."""
        self._require_link()
        timeout_s = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        body = {"target_system": self._sysid, "target_component": AUTOPILOT_COMPONENT_ID, "command": command, **fields}
        message = MavlinkMessage(message_name, 0, 0, self._sysid, AUTOPILOT_COMPONENT_ID, json.dumps(body))
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self._wall_s(timeout_s)):
                result, ack = await self._fleet._commands.send(self._direct, message)
        except TimeoutError:
            raise self._lost_or(CommandTimeout(what, timeout_s)) from None
        if result != MavlinkDirectResult.SUCCESS:
            if result == MavlinkDirectResult.TIMEOUT and self._tracker.snap.link_alive:
                raise CommandTimeout(what, timeout_s)
            if not self._tracker.snap.link_alive or result in (MavlinkDirectResult.NO_SYSTEM,
                                                                MavlinkDirectResult.CONNECTION_ERROR):
                raise LinkLost(self._vehicle_id)
            raise CommandRejected(what, result.name, "")
        mav_result = int(json.loads(ack.fields_json)["result"])
        if mav_result != 0:
            raise CommandRejected(what, px4.result_name(mav_result), await self._reason(t0))
        return t0

    async def _confirm(self, what: str, predicate: Callable[[VehicleState], bool], t0: float) -> None:
        """After an ACCEPTED command: until the HEARTBEAT shows its effect, or CommandRejected."""
        try:
            await self.wait_for(predicate, CONFIRM_TIMEOUT_S, what)
        except CommandTimeout:
            raise CommandRejected(what, "NOT_TAKEN", self._tracker.reasons_since(t0)) from None

    async def _reason(self, t0: float) -> str:
        """PX4's reason text; it can trail the ACK by a moment, so give it a short grace."""
        if not self._tracker.has_text_since(t0):
            try:
                changes = self._tracker.snapshots.changes(include_current=False)
                async with asyncio.timeout(self._wall_s(1.0, floor_s=0.5)), contextlib.aclosing(changes):
                    async for _ in changes:
                        if self._tracker.has_text_since(t0):
                            break
            except TimeoutError:
                pass
        return self._tracker.reasons_since(t0)

    def _wall_s(self, vehicle_s: float, *, floor_s: float | None = None) -> float:
        return self._fleet.wall_s(vehicle_s, floor_s=floor_s, sysid=self._sysid)

    def _require_link(self) -> None:
        # Do not shout into the void: the caller learns at once, and retries once LINK_RESTORED.
        if not self._tracker.snap.link_alive and self._tracker.heartbeats:
            raise LinkLost(self._vehicle_id)

    def _lost_or(self, error: Exception) -> Exception:
        return error if self._tracker.snap.link_alive else LinkLost(self._vehicle_id)

    def _on_link_restored(self) -> None:
        # The vehicle may have flown on (failsafe) while we could not hear it: mode and armed come
        # with every HEARTBEAT; ask again for home and mission progress, which come rarely.
        self._fleet.spawn(self._resync(), f"resync-{self._vehicle_id}")

    async def _resync(self) -> None:
        for message_id in (px4.MSG_HOME_POSITION, px4.MSG_MISSION_CURRENT):
            try:
                await self.request_message(message_id)
            except (CommandRejected, CommandTimeout, LinkLost) as e:
                log.info("%s: resync of message %d failed: %s", self._vehicle_id, message_id, e)


def _bearing_rad(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, radians clockwise from north."""
    phi1, phi2, dlon = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    y = math.sin(dlon) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlon)
    return math.atan2(y, x)


if TYPE_CHECKING:
    _conforms: type[Vehicle] = MavsdkVehicle  # mypy checks the backend against the protocol
