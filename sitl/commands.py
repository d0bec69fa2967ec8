"""COMMAND_LONG / COMMAND_INT handling with the ACKs real PX4 gives (see shared/data/px4).

- COMMAND_INT in any frame but GLOBAL_INT (5): COMMAND_UNSUPPORTED_MAV_FRAME (9).
- DO_SET_MODE: two ACCEPTED ACKs for every known main mode, even when the mode is not taken
  (e.g. Offboard without a setpoint stream, see `sitl.offboard`).
- DO_GRIPPER: IN_PROGRESS (progress 255), then the final ACK ~1.04 s later (FAILED when jammed).
- MISSION_START: DENIED + "Mission start denied! No valid mission" without a feasible mission,
  or before PX4's navigator has checked a new one (see `sitl.navigator.MISSION_CHECK_DELAY_S`);
  disarmed with one, PX4 arms itself ("Armed by mission start").
- Arming refused: TEMPORARILY_REJECTED with the reason as STATUSTEXT.
- DO_PAUSE_CONTINUE, DO_SET_MISSION_CURRENT, DO_FENCE_ENABLE, NAV_LOITER_UNLIM and unknown
  commands: UNSUPPORTED (3).
- REQUEST_MESSAGE: the message goes out before its ACK.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import development as mavlink2

from sitl import events, modes
from sitl.codec import spec_for
from sitl.modes import Mode
from sitl.telemetry import autopilot_version_values

if TYPE_CHECKING:
    from sitl.link import Link
    from sitl.vehicle import SimVehicle

ACCEPTED = 0
TEMPORARILY_REJECTED = 1
DENIED = 2
UNSUPPORTED = 3
FAILED = 4
IN_PROGRESS = 5
UNSUPPORTED_MAV_FRAME = 9

CMD_NAV_LOITER_UNLIM = 17
CMD_NAV_RETURN_TO_LAUNCH = 20
CMD_NAV_LAND = 21
CMD_NAV_TAKEOFF = 22
CMD_DO_SET_MODE = 176
CMD_DO_CHANGE_SPEED = 178
CMD_DO_SET_HOME = 179
CMD_DO_REPOSITION = 192
CMD_DO_PAUSE_CONTINUE = 193
CMD_DO_FENCE_ENABLE = 207
CMD_DO_GRIPPER = 211
CMD_DO_SET_MISSION_CURRENT = 224
CMD_DO_SET_STANDARD_MODE = 262
CMD_MISSION_START = 300
CMD_COMPONENT_ARM_DISARM = 400
CMD_GET_HOME_POSITION = 410
CMD_SET_MESSAGE_INTERVAL = 511
CMD_REQUEST_MESSAGE = 512
CMD_REQUEST_AUTOPILOT_CAPABILITIES = 520

FRAME_GLOBAL_INT = 5
INT32_MAX = 2**31 - 1
FORCE_DISARM_MAGIC = 21196
GRIPPER_RELEASE_S = 1.04
SEVERITY_CRITICAL = 2
MSG_AUTOPILOT_VERSION = 148
MSG_HOME_POSITION = 242
MSG_AVAILABLE_MODES = 435
MSG_CURRENT_MODE = 436

_ACK_SPEC = spec_for(mavlink2.MAVLink_command_ack_message)
_AUTOPILOT_VERSION_SPEC = spec_for(mavlink2.MAVLink_autopilot_version_message)
_AVAILABLE_MODES_SPEC = spec_for(mavlink2.MAVLink_available_modes_message)


class CommandHandler:
    """Answers the commands addressed to one vehicle."""

    def __init__(self, vehicle: SimVehicle) -> None:
        self.v = vehicle

    def handle(self, msg: Any, link: Link) -> None:
        v = self.v
        if msg.target_system not in (0, v.sysid) or msg.target_component not in (0, 1):
            return
        cmd = int(msg.command)
        is_int = msg.get_type() == "COMMAND_INT"
        if is_int and msg.frame != FRAME_GLOBAL_INT:
            self._ack(link, msg, cmd, UNSUPPORTED_MAV_FRAME)
            return
        params = [msg.param1, msg.param2, msg.param3, msg.param4]
        if is_int:
            lat = msg.x * 1e-7 if msg.x != INT32_MAX else math.nan
            lon = msg.y * 1e-7 if msg.y != INT32_MAX else math.nan
            alt = float(msg.z)
        else:
            lat, lon, alt = float(msg.param5), float(msg.param6), float(msg.param7)
        result = self._dispatch(cmd, params, lat, lon, alt, msg, link)
        if result is not None:
            self._ack(link, msg, cmd, result)

    def _ack(self, link: Link, msg: Any, cmd: int, result: int, progress: int = 0) -> None:
        values = (cmd, result, progress, 0, msg.get_srcSystem(), msg.get_srcComponent())
        link.send_now(link.encoder.pack(_ACK_SPEC, values))

    # --- dispatch -----------------------------------------------------------------------------
    def _dispatch(
        self, cmd: int, p: list[float], lat: float, lon: float, alt: float, msg: Any, link: Link
    ) -> int | None:
        v = self.v
        if cmd == CMD_COMPONENT_ARM_DISARM:
            return self._arm_disarm(p[0], p[1])
        if cmd == CMD_DO_SET_MODE:
            return self._set_mode(p, msg, link)
        if cmd == CMD_DO_SET_STANDARD_MODE:
            target = modes.standard_mode_target(int(p[0]), v.kind)
            if target is None:
                return FAILED
            self._enter(target)
            return ACCEPTED
        if cmd == CMD_MISSION_START:
            return self._mission_start(p[0])
        if cmd == CMD_NAV_TAKEOFF:
            return self._takeoff(lat, lon, alt)
        if cmd == CMD_NAV_LAND:
            v.set_mode(Mode.LAND)
            return ACCEPTED
        if cmd == CMD_NAV_RETURN_TO_LAUNCH:
            self._enter(Mode.RTL)
            return ACCEPTED
        if cmd == CMD_DO_REPOSITION:
            return self._reposition(p[0], lat, lon, alt)
        if cmd == CMD_DO_CHANGE_SPEED:
            if p[1] > 0:
                v.navigator.cruise_m_s = p[1]
            return ACCEPTED
        if cmd == CMD_DO_GRIPPER:
            self._gripper(msg, link)
            return None  # both ACKs are sent by _gripper
        if cmd == CMD_DO_SET_HOME:
            return self._set_home(p[0], lat, lon, alt)
        if cmd == CMD_SET_MESSAGE_INTERVAL:
            ok = v.set_message_interval(link, int(p[0]), p[1])
            return ACCEPTED if ok else DENIED
        if cmd == CMD_REQUEST_MESSAGE:
            return ACCEPTED if self._send_requested(int(p[0]), p[1], link) else DENIED
        if cmd == CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self._send_requested(MSG_AUTOPILOT_VERSION, 0.0, link)
            return ACCEPTED
        if cmd == CMD_GET_HOME_POSITION:
            self._send_requested(MSG_HOME_POSITION, 0.0, link)
            return ACCEPTED
        # DO_PAUSE_CONTINUE, DO_SET_MISSION_CURRENT, DO_FENCE_ENABLE, NAV_LOITER_UNLIM, unknown ids
        return UNSUPPORTED

    def _enter(self, mode: int) -> None:
        self.v.set_mode(mode)

    def _arm_disarm(self, p1: float, p2: float) -> int:
        v = self.v
        if p1 >= 0.5:
            if v.armed:
                return ACCEPTED
            reason = v.arming_denied_reason()
            if reason is not None:
                v.statustext(reason if reason.endswith("\t") else reason + "\t", SEVERITY_CRITICAL)
                # Any failed check ends at commander's final gate, which sends this event.
                v.event("commander_arm_denied_resolve_failures", events.CRITICAL, internal=events.INFO)
                return TEMPORARILY_REJECTED
            v.arm("Armed by external command\t")
            return ACCEPTED
        if not v.armed:
            return ACCEPTED
        if v.airborne and int(p2) != FORCE_DISARM_MAGIC:
            v.statustext("Disarming denied: not landed\t", SEVERITY_CRITICAL)
            return TEMPORARILY_REJECTED
        v.disarm("Disarmed by external command\t")
        if v.airborne:  # forced: it drops
            v.physics.pos[v.index][2] = 0.0
        return ACCEPTED

    def _set_mode(self, p: list[float], msg: Any, link: Link) -> int | None:
        base = int(p[0])
        if not base & modes.FLAG_CUSTOM_MODE_ENABLED:
            return ACCEPTED  # PX4 only acts on custom modes here
        known, target = modes.requested_mode(int(p[1]), int(p[2]))
        if not known:
            return TEMPORARILY_REJECTED
        if target == Mode.OFFBOARD and not self.v.offboard_signal_ok():
            target = None  # no setpoint stream (yet): ACKed, not taken
        if target is not None:
            self._enter(target)
        # PX4 answers DO_SET_MODE with two ACKs; both say ACCEPTED, taken or not.
        self._ack(link, msg, CMD_DO_SET_MODE, ACCEPTED)
        return ACCEPTED

    def _mission_start(self, first: float) -> int:
        v = self.v
        if not v.mission_valid():
            v.statustext("Mission start denied! No valid mission\t", SEVERITY_CRITICAL)
            v.event("commander_mission_start_denied_no_mission", events.CRITICAL, internal=events.INFO)
            return DENIED
        if not v.armed:
            reason = v.arming_denied_reason_for_mission()
            if reason is not None:
                v.statustext(reason + "\t", SEVERITY_CRITICAL)
                return DENIED
            v.arm("Armed by mission start\t", events.REASON_MISSION_START)
        v.navigator.start_mission(first)
        return ACCEPTED

    def _takeoff(self, lat: float, lon: float, alt_amsl: float) -> int:
        v = self.v
        e, n, _u = v.position_enu
        if math.isfinite(lat) and math.isfinite(lon) and not (lat == 0 and lon == 0):
            e, n = v.to_local(lat, lon)
        # No altitude: MIS_TAKEOFF_ALT above home.
        up = alt_amsl - v.origin_alt_m if math.isfinite(alt_amsl) else v.home_enu[2] + 2.5
        v.navigator.set_takeoff(e, n, up)
        v.set_mode(Mode.TAKEOFF)
        return ACCEPTED

    def _reposition(self, speed: float, lat: float, lon: float, alt_amsl: float) -> int:
        v = self.v
        if not v.armed or (v.is_quad and not v.airborne):
            return ACCEPTED  # PX4 ACKs it and nothing visible happens
        e, n, u = v.position_enu
        if math.isfinite(lat) and math.isfinite(lon):
            fence = v.store.geofence()
            if not fence.is_empty and not fence.contains(lat, lon):
                # PX4 ACKs and ignores it; the reason is only in this text and event.
                v.statustext("Reposition is outside geofence\t", SEVERITY_CRITICAL)
                v.event("navigator_reposition_outside_geofence", events.ERROR, internal=events.INFO)
                return ACCEPTED
            e, n = v.to_local(lat, lon)
        if math.isfinite(alt_amsl):
            u = alt_amsl - v.origin_alt_m
        v.navigator.reposition(e, n, u, speed if math.isfinite(speed) else -1.0)
        return ACCEPTED

    def _gripper(self, msg: Any, link: Link) -> None:
        v = self.v
        self._ack(link, msg, CMD_DO_GRIPPER, IN_PROGRESS, progress=255)

        def finish() -> None:
            ok = v.release_payload()
            self._ack(link, msg, CMD_DO_GRIPPER, ACCEPTED if ok else FAILED)

        v.schedule(GRIPPER_RELEASE_S, finish)

    def _set_home(self, use_current: float, lat: float, lon: float, alt_amsl: float) -> int:
        v = self.v
        if use_current >= 0.5:
            v.home_enu = v.position_enu
        elif math.isfinite(lat) and math.isfinite(lon):
            e, n = v.to_local(lat, lon)
            u = alt_amsl - v.origin_alt_m if math.isfinite(alt_amsl) else v.home_enu[2]
            v.home_enu = (e, n, u)
        else:
            return DENIED
        return ACCEPTED

    def _send_requested(self, msg_id: int, param2: float, link: Link) -> bool:
        v = self.v
        if msg_id == MSG_AUTOPILOT_VERSION:
            link.send_now(link.encoder.pack(_AUTOPILOT_VERSION_SPEC, autopilot_version_values(v.sysid)))
            return True
        if msg_id == MSG_AVAILABLE_MODES:
            listing = modes.available_modes(v.kind)
            wanted = int(param2) if math.isfinite(param2) else 0
            for index, (custom, standard, name, props) in enumerate(listing, start=1):
                if wanted and index != wanted:
                    continue
                values = (len(listing), index, standard, custom, props, name.encode())
                link.queue(link.encoder.pack(_AVAILABLE_MODES_SPEC, values))
            link.flush()
            return True
        for sm in v.messages.values():
            if sm.msg_id == msg_id:
                link.send_now(link.encoder.pack(sm.spec, sm.build(v.sample(v.now_s()))))
                return True
        return False
