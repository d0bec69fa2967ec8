"""The MAVLink mission protocol (mission, fence, rally) as PX4 speaks it.

A port of the state machine in PX4's `mavlink_mission.cpp`, checked against captures of real PX4
(`shared/data/px4/*_profile.json`, section `mission`):

- upload: PX4 asks for each item with MISSION_REQUEST_INT, re-asks the same seq every 0.26 s and
  gives up 5 s after the last message it received, with STATUSTEXT "Operation timeout" and *no*
  MISSION_ACK; the stored plan is replaced only when the last item arrived;
- MISSION_COUNT 0 and MISSION_CLEAR_ALL clear and ACK ACCEPTED;
- download: items come back in frame 6/5 (relative/absolute altitude), fence items always in 5;
- after a download PX4 stays in the send state until the ground ACKs it (or 5 s pass), and answers
  a MISSION_COUNT meanwhile with MISSION_ACK ERROR carrying the *download's* mission_type;
- fence polygons with fewer than 3 vertices are refused with MAV_MISSION_ERROR after that item;
- a mission with a waypoint outside the fence is ACCEPTED, then "Geofence violation for waypoint N".

All times are simulation seconds from the injected `now_s` clock; `tick()` drives retries.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pymavlink.dialects.v20 import development as mavlink2

from sitl.fence import (
    FENCE_CIRCLE_EXCLUSION,
    FENCE_CIRCLE_INCLUSION,
    FENCE_POLYGON_EXCLUSION,
    FENCE_POLYGON_INCLUSION,
    FENCE_RETURN_POINT,
    Geofence,
    invalid_fence_item,
    vertex_count,
)

MISSION = 0
FENCE = 1
RALLY = 2
ALL = 255

# PX4 re-sends a request once more than MAVLINK_MISSION_RETRY_TIMEOUT_DEFAULT (250 ms) has passed,
# checked on each pass of its mavlink loop: the captures' retries came every 0.261-0.266 s of wall
# time (19 gaps, 4 runs), 0.262 s on average of PX4's own clock (it ran at 0.993 of the wall clock).
RETRY_INTERVAL_S = 0.262
PROTOCOL_TIMEOUT_S = 5.0  # MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT
# Dataman capacities of PX4 SITL (mission, fence, rally).
MAX_COUNT = {MISSION: 2000, FENCE: 64, RALLY: 8}

SEVERITY_CRITICAL = 2
SEVERITY_INFO = 6

# Float clocks: a retry due "at" 0.25 s must not slip a whole tick because of rounding.
_EPS_S = 1e-6
_MISSIONPLANNER_COMPID = 190
_RALLY_POINT = 5100

_FRAME_GLOBAL = 0
_FRAME_MISSION = 2
_FRAME_GLOBAL_RELATIVE_ALT = 3
_FRAME_GLOBAL_INT = 5
_FRAME_GLOBAL_RELATIVE_ALT_INT = 6

_M = mavlink2
# Commands PX4 accepts in a global frame (parse_mavlink_mission_item).
_GLOBAL_COMMANDS = frozenset({
    _M.MAV_CMD_NAV_WAYPOINT, _M.MAV_CMD_NAV_LOITER_UNLIM, _M.MAV_CMD_NAV_LOITER_TIME,
    _M.MAV_CMD_NAV_LAND, _M.MAV_CMD_NAV_TAKEOFF, _M.MAV_CMD_NAV_LOITER_TO_ALT,
    _M.MAV_CMD_NAV_ROI, _M.MAV_CMD_DO_SET_ROI, _M.MAV_CMD_DO_SET_ROI_LOCATION,
    _M.MAV_CMD_NAV_VTOL_TAKEOFF, _M.MAV_CMD_NAV_VTOL_LAND, _M.MAV_CMD_CONDITION_GATE,
    FENCE_RETURN_POINT, FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION,
    FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION, _RALLY_POINT,
    _M.MAV_CMD_COMPONENT_ARM_DISARM, _M.MAV_CMD_DO_AUTOTUNE_ENABLE,
})
# Commands PX4 accepts in MAV_FRAME_MISSION (no coordinates).
_MISSION_FRAME_COMMANDS = frozenset({
    _M.MAV_CMD_DO_JUMP, _M.MAV_CMD_NAV_ROI, _M.MAV_CMD_DO_SET_ROI, _M.MAV_CMD_DO_WINCH,
    _M.MAV_CMD_DO_GRIPPER, _M.MAV_CMD_DO_CHANGE_SPEED, _M.MAV_CMD_DO_SET_HOME,
    _M.MAV_CMD_DO_LAND_START, _M.MAV_CMD_DO_TRIGGER_CONTROL, _M.MAV_CMD_DO_DIGICAM_CONTROL,
    _M.MAV_CMD_DO_MOUNT_CONFIGURE, _M.MAV_CMD_DO_MOUNT_CONTROL,
    _M.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW, _M.MAV_CMD_SET_CAMERA_FOCUS,
    _M.MAV_CMD_DO_GIMBAL_MANAGER_CONFIGURE, _M.MAV_CMD_IMAGE_START_CAPTURE,
    _M.MAV_CMD_IMAGE_STOP_CAPTURE, _M.MAV_CMD_VIDEO_START_CAPTURE, _M.MAV_CMD_VIDEO_STOP_CAPTURE,
    _M.MAV_CMD_DO_CONTROL_VIDEO, _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, _M.MAV_CMD_OBLIQUE_SURVEY,
    _M.MAV_CMD_DO_SET_CAM_TRIGG_INTERVAL, _M.MAV_CMD_SET_CAMERA_MODE, _M.MAV_CMD_SET_CAMERA_SOURCE,
    _M.MAV_CMD_DO_VTOL_TRANSITION, _M.MAV_CMD_NAV_DELAY, _M.MAV_CMD_NAV_RETURN_TO_LAUNCH,
    _M.MAV_CMD_DO_SET_ROI_WPNEXT_OFFSET, _M.MAV_CMD_DO_SET_ROI_NONE, _M.MAV_CMD_CONDITION_DELAY,
    _M.MAV_CMD_CONDITION_DISTANCE, _M.MAV_CMD_DO_SET_ACTUATOR, _M.MAV_CMD_DO_AUTOTUNE_ENABLE,
    _M.MAV_CMD_COMPONENT_ARM_DISARM,
})
_PLAN_ONLY_COMMANDS = frozenset({
    FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION, FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION,
    _RALLY_POINT,
})
_HANDLED = frozenset({
    "MISSION_COUNT", "MISSION_ITEM_INT", "MISSION_ITEM", "MISSION_REQUEST_LIST", "MISSION_REQUEST_INT",
    "MISSION_REQUEST", "MISSION_CLEAR_ALL", "MISSION_ACK", "MISSION_SET_CURRENT",
})

Reply = Callable[[Any], None]


@dataclass(frozen=True)
class MissionItem:
    """One stored plan item, as uploaded. x/y are degE7 for global frames (param5/6 otherwise)."""

    seq: int
    frame: int
    command: int
    current: int
    autocontinue: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float
    mission_type: int = MISSION

    @property
    def lat_deg(self) -> float:
        return self.x * 1e-7

    @property
    def lon_deg(self) -> float:
        return self.y * 1e-7

    @property
    def altitude_is_relative(self) -> bool:
        return self.frame in (_FRAME_GLOBAL_RELATIVE_ALT, _FRAME_GLOBAL_RELATIVE_ALT_INT)


class MissionStore:
    """The three plans of one vehicle. The simulator reads it; `MissionProtocol` writes it."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[MissionItem, ...]] = {MISSION: (), FENCE: (), RALLY: ()}
        self._version = {MISSION: 0, FENCE: 0, RALLY: 0}
        self._crc = {MISSION: 0, FENCE: 0, RALLY: 0}
        self._geofence = Geofence()
        # Result of PX4's mission feasibility check (geofence part); MISSION_START is DENIED without it.
        self.mission_feasible = False

    def items(self, mission_type: int) -> tuple[MissionItem, ...]:
        return self._items.get(mission_type, ())

    def version(self, mission_type: int) -> int:
        """Bumps on every change that PX4 publishes (a re-upload of identical items is not one)."""
        return self._version.get(mission_type, 0)

    def opaque_id(self, mission_type: int) -> int:
        """PX4's CRC32 of the plan (0 when empty): mission_id / fence_id / rally_points_id."""
        return self._crc.get(mission_type, 0)

    def count(self, mission_type: int) -> int:
        return len(self._items.get(mission_type, ()))

    def geofence(self) -> Geofence:
        """The fence built from the stored fence items (rebuilt only when they change)."""
        return self._geofence

    def replace(self, mission_type: int, items: Sequence[MissionItem], crc32: int | None = None) -> bool:
        """Store a new plan; returns False (and changes nothing) when it equals the stored one.

        Clearing (no items) always counts as a change: PX4 republishes on every clear.
        """
        if mission_type not in self._items:
            return False
        new_items = tuple(items)
        crc = plan_crc32(new_items) if crc32 is None else crc32
        if new_items and crc == self._crc[mission_type]:
            return False
        self._items[mission_type] = new_items
        self._crc[mission_type] = crc if new_items else 0
        self._version[mission_type] += 1
        if mission_type == FENCE:
            self._geofence = Geofence.from_items(new_items)
        return True


def plan_crc32(items: Sequence[MissionItem], prev: int = 0) -> int:
    crc = prev
    for item in items:
        crc = item_crc32(item, crc)
    return crc


def item_crc32(item: MissionItem, prev: int) -> int:
    # Same fields as PX4's crc32_for_mission_item (frame, command, autocontinue, params, x, y, z).
    raw = struct.pack(
        "<BHB4fiif", item.frame & 0xFF, item.command & 0xFFFF, item.autocontinue & 0xFF,
        item.param1, item.param2, item.param3, item.param4, item.x, item.y, item.z,
    )
    return zlib.crc32(raw, prev)


class _State(Enum):
    IDLE = "idle"
    GETLIST = "getlist"  # receiving an upload
    SENDLIST = "sendlist"  # serving a download


class MissionProtocol:
    """PX4's mission manager for one vehicle (all its links share it, as PX4's static state does)."""

    def __init__(
        self,
        store: MissionStore,
        *,
        sysid: int,
        compid: int = 1,
        now_s: Callable[[], float],
        statustext: Callable[[str, int], None],
        on_changed: Callable[[int], None],
        on_set_current: Callable[[int], None],
        home_lat_lon: Callable[[], tuple[float, float] | None] | None = None,
        current_seq: Callable[[], int] | None = None,
        rally_frame_warning: bool = True,
    ) -> None:
        self.store = store
        self.sysid = sysid
        self.compid = compid
        self._now = now_s
        self._statustext = statustext
        self._on_changed = on_changed
        self._on_set_current = on_set_current
        self._home = home_lat_lon
        self._current_seq = current_seq
        # PX4's multicopter RTL complains about rally points in frames it cannot read; the rover's
        # capture shows no such text, so a rover simulator passes False.
        self._rally_frame_warning = rally_frame_warning
        self._state = _State.IDLE
        self._mission_type = MISSION
        self._int_mode = True
        self._partner: tuple[int, int] | None = None
        self._partner_reply: Reply | None = None
        self._transfer_seq = 0
        self._transfer_count = 0
        self._staged: list[MissionItem] = []
        self._transfer_crc = 0
        self._last_sent_s: float | None = None
        self._next_retry_s: float | None = None
        self._last_recv_s: float | None = None

    @property
    def busy(self) -> bool:
        return self._state is not _State.IDLE

    # ------------------------------------------------------------------ entry points

    def handle(self, msg: Any, reply: Reply) -> bool:
        """Consume a mission-protocol message addressed to this system; False for anything else."""
        kind = msg.get_type()
        if kind not in _HANDLED:
            return False
        if msg.target_system not in (self.sysid, 0):
            return False
        if msg.target_component not in (self.compid, _MISSIONPLANNER_COMPID, 0):
            return True  # ours, but PX4 ignores it (CHECK_SYSID_COMPID_MISSION)
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        if kind == "MISSION_COUNT":
            self._on_count(msg, src, reply)
        elif kind in ("MISSION_ITEM_INT", "MISSION_ITEM"):
            self._int_mode = kind == "MISSION_ITEM_INT"
            self._on_item(msg, src, reply)
        elif kind == "MISSION_REQUEST_LIST":
            self._on_request_list(msg, src, reply)
        elif kind in ("MISSION_REQUEST_INT", "MISSION_REQUEST"):
            self._int_mode = kind == "MISSION_REQUEST_INT"
            self._on_request(msg, src, reply)
        elif kind == "MISSION_CLEAR_ALL":
            self._on_clear_all(msg, src, reply)
        elif kind == "MISSION_ACK":
            self._on_ack(msg, src)
        else:
            self._on_set_current_msg(msg)
        return True

    def tick(self) -> None:
        """Re-requests and timeouts; call at >= 20 Hz of simulation time."""
        if self._state is _State.IDLE:
            self._last_sent_s = None
            self._next_retry_s = None
            self._last_recv_s = None
            return
        now = self._now()
        # As PX4's MavlinkMissionManager::send(): a due re-request goes first, the give-up is checked
        # only when none is due. Re-requests keep to a RETRY_INTERVAL_S grid from the request that
        # started the wait: a late tick sends late but does not push the next one back. So a lost item
        # costs 20 requests in 5 s, as in PX4, however coarse the caller's ticks are.
        if (
            self._state is _State.GETLIST
            and self._next_retry_s is not None
            and now >= self._next_retry_s - _EPS_S
        ):
            due = self._next_retry_s + RETRY_INTERVAL_S
            self._send_request(self._transfer_seq)
            # More than a whole interval behind: restart the grid rather than send a burst.
            self._next_retry_s = due if due > now else now + RETRY_INTERVAL_S
        elif self._last_recv_s is not None and now - self._last_recv_s >= PROTOCOL_TIMEOUT_S - _EPS_S:
            self._statustext("Operation timeout\t", SEVERITY_CRITICAL)
            self._to_idle()

    # ------------------------------------------------------------------ upload

    def _on_count(self, msg: Any, src: tuple[int, int], reply: Reply) -> None:
        now = self._now()
        if self._state is _State.IDLE:
            self._last_recv_s = now
            self._partner = src
            self._partner_reply = reply
            self._mission_type = int(msg.mission_type)
            count = int(msg.count)
            if count > MAX_COUNT.get(self._mission_type, 0):
                self._ack(src, reply, _M.MAV_MISSION_NO_SPACE)
                return
            if count == 0:
                self._commit(self._mission_type, [], 0, reply)
                return
            self._state = _State.GETLIST
            self._transfer_seq = 0
            self._transfer_count = count
            self._staged = []
            self._transfer_crc = 0
        elif self._state is _State.GETLIST:
            self._last_recv_s = now
            if src != self._partner:
                self._ack(src, reply, _M.MAV_MISSION_ERROR)
                return
            self._partner_reply = reply
            if self._transfer_seq != 0:
                self._statustext("WPM: REJ. CMD: Busy\t", SEVERITY_CRITICAL)
                self._ack(src, reply, _M.MAV_MISSION_ERROR)
                return
            # seq 0 still outstanding: our first request was lost, ask again.
        else:
            # Still serving a download (e.g. an empty one the ground never ACKed): PX4 refuses, and
            # the ACK carries the download's mission_type.
            self._statustext("WPM: IGN MISSION_COUNT: Busy\t", SEVERITY_CRITICAL)
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            return
        self._send_request(self._transfer_seq)

    def _on_item(self, msg: Any, src: tuple[int, int], reply: Reply) -> None:
        if src != self._partner:
            self._statustext("REJ. MIS ITEM: partner id mismatch\t", SEVERITY_CRITICAL)
            return
        self._partner_reply = reply
        if int(msg.mission_type) != self._mission_type:
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            return
        seq = int(msg.seq)
        if self._state is _State.GETLIST:
            self._last_recv_s = self._now()
            if seq != self._transfer_seq:
                return  # out of order: ignored, the retry timer asks again
        elif self._state is _State.IDLE:
            if self._transfer_seq == seq + 1:
                # The ground missed our ACK and resent the last item.
                self._ack(src, reply, _M.MAV_MISSION_ACCEPTED)
            else:
                self._statustext("IGN MISSION_ITEM: No transfer\t", SEVERITY_CRITICAL)
                self._ack(src, reply, _M.MAV_MISSION_ERROR)
            return
        else:
            self._statustext("IGN MISSION_ITEM: Busy\t", SEVERITY_CRITICAL)
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            return

        item, result = self._parse(msg)
        if item is None:
            self._statustext("IGN MISSION_ITEM: Invalid item\t", SEVERITY_CRITICAL)
            self._ack(src, reply, result)
            self._to_idle()
            return
        check_failed = False
        if self._mission_type == MISSION and item.command in _PLAN_ONLY_COMMANDS:
            check_failed = True
        elif self._mission_type == FENCE:
            last = seq + 1 == self._transfer_count
            if invalid_fence_item([*self._staged, item], complete=last) is not None:
                check_failed = True
        if check_failed:
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            self._to_idle()
            return

        self._staged.append(item)
        self._transfer_crc = item_crc32(item, self._transfer_crc)
        self._transfer_seq = seq + 1
        if self._transfer_seq == self._transfer_count:
            self._commit(self._mission_type, self._staged, self._transfer_crc, reply)
        else:
            self._send_request(self._transfer_seq)

    def _parse(self, msg: Any) -> tuple[MissionItem | None, int]:
        frame = int(msg.frame)
        command = int(msg.command)
        global_frames = {_FRAME_GLOBAL, _FRAME_GLOBAL_RELATIVE_ALT}
        if self._int_mode:
            global_frames |= {_FRAME_GLOBAL_INT, _FRAME_GLOBAL_RELATIVE_ALT_INT}
        p1 = float(msg.param1)
        if frame in global_frames:
            if command not in _GLOBAL_COMMANDS:
                return None, _M.MAV_MISSION_UNSUPPORTED
            if command in (_M.MAV_CMD_NAV_ROI, _M.MAV_CMD_DO_SET_ROI) and int(p1) not in (
                _M.MAV_ROI_LOCATION, _M.MAV_ROI_NONE,
            ):
                return None, _M.MAV_MISSION_INVALID_PARAM1
            if self._int_mode:
                x, y = int(msg.x), int(msg.y)
            else:
                x, y = _deg_to_e7(float(msg.x)), _deg_to_e7(float(msg.y))
        elif frame == _FRAME_MISSION:
            if command not in _MISSION_FRAME_COMMANDS:
                return None, _M.MAV_MISSION_UNSUPPORTED
            if command in (_M.MAV_CMD_NAV_ROI, _M.MAV_CMD_DO_SET_ROI) and int(p1) not in (
                _M.MAV_ROI_NONE, _M.MAV_ROI_WPNEXT, _M.MAV_ROI_WPINDEX,
            ):
                return None, _M.MAV_MISSION_INVALID_PARAM1
            x, y = (int(msg.x), int(msg.y)) if self._int_mode else (_round(msg.x), _round(msg.y))
        else:
            return None, _M.MAV_MISSION_UNSUPPORTED_FRAME
        item = MissionItem(
            seq=int(msg.seq), frame=frame, command=command, current=int(msg.current),
            autocontinue=int(msg.autocontinue), param1=p1, param2=float(msg.param2),
            param3=float(msg.param3), param4=float(msg.param4), x=x, y=y, z=float(msg.z),
            mission_type=self._mission_type,
        )
        return item, _M.MAV_MISSION_ACCEPTED

    def _commit(self, mission_type: int, items: Sequence[MissionItem], crc: int, reply: Reply) -> None:
        # An unknown type (count 0 for ALL included) is ACKed without touching anything, as in PX4.
        changed = [mission_type] if self.store.replace(mission_type, items, crc) else []
        violation = self._check_feasibility() if (MISSION in changed or FENCE in changed) else None
        self._to_idle()
        assert self._partner is not None
        self._ack(self._partner, reply, _M.MAV_MISSION_ACCEPTED)
        self._after_change(changed, violation)

    def _after_change(self, changed: Sequence[int], violation: int | None) -> None:
        for mission_type in changed:
            self._on_changed(mission_type)
        if violation is not None:
            self._statustext(f"Geofence violation for waypoint {violation + 1}\t", SEVERITY_CRITICAL)
        if RALLY in changed and self._rally_frame_warning and any(
            r.frame not in (_FRAME_GLOBAL, _FRAME_GLOBAL_RELATIVE_ALT) for r in self.store.items(RALLY)
        ):
            # PX4's RTL reads rally points only in frames 0 and 3 and complains about the rest.
            self._statustext("RTL: unsupported MAV_FRAME\t", SEVERITY_CRITICAL)

    def _check_feasibility(self) -> int | None:
        """PX4's geofence feasibility check; returns the violating seq and records validity."""
        items = self.store.items(MISSION)
        if not items:
            self.store.mission_feasible = False
            return None
        home = self._home() if self._home is not None else None
        violation = self.store.geofence().first_violation(items, home)
        self.store.mission_feasible = violation is None
        return violation

    def _send_request(self, seq: int) -> None:
        if seq >= MAX_COUNT.get(self._mission_type, 0):
            self._statustext("ERROR: Waypoint index exceeds list capacity\t", SEVERITY_CRITICAL)
            return
        self._last_sent_s = self._now()
        self._next_retry_s = self._last_sent_s + RETRY_INTERVAL_S
        assert self._partner is not None
        assert self._partner_reply is not None
        sysid, compid = self._partner
        cls = _M.MAVLink_mission_request_int_message if self._int_mode else _M.MAVLink_mission_request_message
        self._partner_reply(cls(sysid, compid, seq, self._mission_type))

    # ------------------------------------------------------------------ download

    def _on_request_list(self, msg: Any, src: tuple[int, int], reply: Reply) -> None:
        # All items were sent and a new list request comes: the ground evidently got them.
        if self._state is _State.SENDLIST and self._transfer_seq == self.store.count(self._mission_type):
            self._to_idle()
        mission_type = int(msg.mission_type)
        same_partner_again = (
            self._state is _State.SENDLIST and mission_type == self._mission_type and src == self._partner
        )
        if self._state is _State.IDLE or same_partner_again:
            self._last_recv_s = self._now()
            self._state = _State.SENDLIST
            self._mission_type = mission_type
            self._transfer_seq = 0
            self._transfer_count = self.store.count(mission_type)
            self._partner = src
            self._partner_reply = reply
            self._last_sent_s = self._now()
            reply(_M.MAVLink_mission_count_message(src[0], src[1], self._transfer_count, mission_type))
        else:
            self._statustext("Mission download request ignored, already active\t", SEVERITY_INFO)

    def _on_request(self, msg: Any, src: tuple[int, int], reply: Reply) -> None:
        if src != self._partner:
            self._statustext("WPM: REJ. CMD: partner id mismatch\t", SEVERITY_CRITICAL)
            return
        if self._state is _State.IDLE:
            return  # PX4 ignores stray requests silently (buggy OSDs send them)
        if self._state is _State.GETLIST:
            self._statustext("WPM: REJ. CMD: Busy\t", SEVERITY_CRITICAL)
            return
        if int(msg.mission_type) != self._mission_type:
            return
        self._partner_reply = reply
        self._last_recv_s = self._now()
        seq = int(msg.seq)
        if seq == self._transfer_seq and self._transfer_seq < self._transfer_count:
            self._transfer_seq += 1
        elif seq != self._transfer_seq - 1:
            self._to_idle()
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            self._statustext("WPM: REJ. CMD: Req. WP was unexpected\t", SEVERITY_CRITICAL)
            return
        items = self.store.items(self._mission_type)
        if seq < len(items):
            self._last_sent_s = self._now()
            reply(self._format(items[seq], src))
        else:
            self._to_idle()
            self._ack(src, reply, _M.MAV_MISSION_ERROR)
            self._statustext("WPM: REJ. CMD: Req. WP was unexpected\t", SEVERITY_CRITICAL)

    def _format(self, item: MissionItem, dest: tuple[int, int]) -> Any:
        """PX4's format_mavlink_mission_item: what survives storage, in the requested encoding."""
        mission_type = self._mission_type
        current_seq = self._current_seq() if self._current_seq is not None else 0
        current = 1 if current_seq == item.seq else 0
        autocontinue = 0 if mission_type == FENCE else item.autocontinue
        if item.frame == _FRAME_MISSION:
            frame = _FRAME_MISSION
            p1, p2, p3, p4 = item.param1, item.param2, item.param3, item.param4
            if item.command == _M.MAV_CMD_DO_JUMP:
                p1, p2 = float(_u16(p1)), float(_u16(p2))
            x_f: float = float(item.x)
            y_f: float = float(item.y)
            x_i, y_i = item.x, item.y
        else:
            relative = item.altitude_is_relative and mission_type != FENCE
            if self._int_mode:
                frame = _FRAME_GLOBAL_RELATIVE_ALT_INT if relative else _FRAME_GLOBAL_INT
            else:
                frame = _FRAME_GLOBAL_RELATIVE_ALT if relative else _FRAME_GLOBAL
            p1, p2, p3, p4 = _stored_params(item)
            x_i, y_i = item.x, item.y
            x_f, y_f = item.x * 1e-7, item.y * 1e-7
        if self._int_mode:
            return _M.MAVLink_mission_item_int_message(
                dest[0], dest[1], item.seq, frame, item.command, current, autocontinue,
                p1, p2, p3, p4, x_i, y_i, item.z, mission_type,
            )
        return _M.MAVLink_mission_item_message(
            dest[0], dest[1], item.seq, frame, item.command, current, autocontinue,
            p1, p2, p3, p4, x_f, y_f, item.z, mission_type,
        )

    # ------------------------------------------------------------------ others

    def _on_clear_all(self, msg: Any, src: tuple[int, int], reply: Reply) -> None:
        if self._state is not _State.IDLE:
            self._statustext("WPM: IGN CLEAR CMD: Busy\t", SEVERITY_CRITICAL)
            return
        self._last_recv_s = self._now()
        self._mission_type = int(msg.mission_type)
        types = (MISSION, FENCE, RALLY) if self._mission_type == ALL else (self._mission_type,)
        changed = [t for t in types if self.store.replace(t, [])]
        violation = self._check_feasibility() if (MISSION in changed or FENCE in changed) else None
        self._ack(src, reply, _M.MAV_MISSION_ACCEPTED)
        self._after_change(changed, violation)

    def _on_ack(self, msg: Any, src: tuple[int, int]) -> None:
        if src != self._partner:
            self._statustext("REJ. WP CMD: partner id mismatch\t", SEVERITY_CRITICAL)
            return
        result = int(msg.type)
        if self._state is _State.SENDLIST and int(msg.mission_type) == self._mission_type:
            self._last_recv_s = self._now()
            self._to_idle()
        elif self._state is _State.GETLIST:
            if result == _M.MAV_MISSION_UNSUPPORTED:
                # The ground does not speak this encoding: switch between INT and float requests.
                self._int_mode = not self._int_mode
                self._send_request(self._transfer_seq)
            elif result == _M.MAV_MISSION_OPERATION_CANCELLED:
                self._to_idle()

    def _on_set_current_msg(self, msg: Any) -> None:
        if self._state is not _State.IDLE:
            self._statustext("WPM: IGN WP CURR CMD: Busy\t", SEVERITY_CRITICAL)
            return
        self._last_recv_s = self._now()
        seq = int(msg.seq)
        if seq < self.store.count(MISSION):
            self._on_set_current(seq)
        else:
            self._statustext("WPM: WP CURR CMD: Not in list\t", SEVERITY_CRITICAL)

    def _ack(self, dest: tuple[int, int], reply: Reply, result: int) -> None:
        reply(_M.MAVLink_mission_ack_message(dest[0], dest[1], result, self._mission_type))

    def _to_idle(self) -> None:
        self._state = _State.IDLE


def _stored_params(item: MissionItem) -> tuple[float, float, float, float]:
    """param1-4 of a positional item after PX4 stored it (only the fields it keeps come back)."""
    cmd = item.command
    if cmd == _M.MAV_CMD_NAV_WAYPOINT:
        return item.param1, item.param2, 0.0, _yaw_deg(item.param4)
    if cmd == _M.MAV_CMD_NAV_LOITER_UNLIM:
        return 0.0, 0.0, item.param3, _yaw_deg(item.param4)
    if cmd == _M.MAV_CMD_NAV_LOITER_TIME:
        return item.param1, float(item.param2 > 0), item.param3, float(item.param4 > 0)
    if cmd == _M.MAV_CMD_NAV_LAND:
        return 0.0, float(_u8(item.param2)), 0.0, _yaw_deg(item.param4)
    if cmd in (_M.MAV_CMD_NAV_TAKEOFF, _M.MAV_CMD_NAV_VTOL_TAKEOFF, _M.MAV_CMD_NAV_VTOL_LAND):
        return 0.0, 0.0, 0.0, _yaw_deg(item.param4)
    if cmd == _M.MAV_CMD_NAV_LOITER_TO_ALT:
        return float(item.param1 > 0), item.param2, 0.0, float(item.param4 > 0)
    if cmd in (FENCE_POLYGON_INCLUSION, FENCE_POLYGON_EXCLUSION):
        return float(vertex_count(item.param1)), 0.0, 0.0, 0.0
    if cmd in (FENCE_CIRCLE_INCLUSION, FENCE_CIRCLE_EXCLUSION):
        return item.param1, 0.0, 0.0, 0.0
    return 0.0, 0.0, 0.0, 0.0


def _yaw_deg(param4_deg: float) -> float:
    # PX4 stores yaw as wrap_2pi(radians(param4)) and returns degrees: 0..360, NaN stays NaN.
    if not math.isfinite(param4_deg):
        return param4_deg
    return math.degrees(math.radians(param4_deg) % (2.0 * math.pi))


def _deg_to_e7(deg: float) -> int:
    return round(deg * 1e7) if math.isfinite(deg) else 0


def _round(value: float) -> int:
    return round(value) if math.isfinite(value) else 0


def _u16(value: float) -> int:
    return int(value) & 0xFFFF if math.isfinite(value) else 0


def _u8(value: float) -> int:
    return int(value) & 0xFF if math.isfinite(value) else 0
