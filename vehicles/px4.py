"""PX4 specifics: custom-mode numbers, MAVLink enums we read, and the mission items PX4 executes.

Numbers follow observed PX4 (see shared/px4-notes.md), not only the MAVLink spec:
custom_mode = (sub_mode << 24) | (main_mode << 16); mission items go up in frame 6
(GLOBAL_RELATIVE_ALT_INT), fence items in frame 5 (GLOBAL_INT); a rover never finishes a
NAV_LAND item, so rover missions are waypoint-only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vehicles.base import (
    Delay,
    ExclusionCircle,
    ExclusionPolygon,
    GeofenceItem,
    InclusionPolygon,
    Land,
    MissionItem,
    MissionState,
    PayloadRelease,
    TakeOff,
    VehicleKind,
    Waypoint,
)
from vehicles.errors import GeofenceUploadFailed, MissionInvalid

# name -> (main_mode, sub_mode); names are ours, upper case, stable (the AVAILABLE_MODES names differ).
PX4_MODES: dict[str, tuple[int, int]] = {
    "MANUAL": (1, 0),
    "ALTCTL": (2, 0),
    "POSCTL": (3, 0),
    "ORBIT": (3, 1),
    "POSCTL_SLOW": (3, 2),
    "AUTO_READY": (4, 1),
    "TAKEOFF": (4, 2),
    "HOLD": (4, 3),
    "MISSION": (4, 4),
    "RTL": (4, 5),
    "LAND": (4, 6),
    "FOLLOW_TARGET": (4, 8),
    "PRECLAND": (4, 9),
    "VTOL_TAKEOFF": (4, 10),
    "ACRO": (5, 0),
    "OFFBOARD": (6, 0),
    "STABILIZED": (7, 0),
    "TERMINATION": (10, 0),
    "ALTITUDE_CRUISE": (11, 0),
}
_MODE_NAMES: dict[int, str] = {(m << 16) | (s << 24): n for n, (m, s) in PX4_MODES.items()}

# HEARTBEAT.base_mode bits
MAV_MODE_FLAG_SAFETY_ARMED = 0x80
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 0x01

MAV_TYPE_GCS = 6
MAV_AUTOPILOT_PX4 = 12
# MAV_TYPE -> our kind; everything with rotors is a drone, ground rovers are rovers.
_DRONE_TYPES = frozenset({2, 3, 4, 13, 14, 15})  # quad, coax, heli, hexa, octo, tri
_ROVER_TYPES = frozenset({10})  # GROUND_ROVER

MAV_RESULT_NAMES: dict[int, str] = {
    0: "ACCEPTED",
    1: "TEMPORARILY_REJECTED",
    2: "DENIED",
    3: "UNSUPPORTED",
    4: "FAILED",
    5: "IN_PROGRESS",
    6: "CANCELLED",
    7: "COMMAND_LONG_ONLY",
    8: "COMMAND_INT_ONLY",
    9: "COMMAND_UNSUPPORTED_MAV_FRAME",
}

_MISSION_STATES: dict[int, MissionState] = {
    0: MissionState.UNKNOWN,
    1: MissionState.NO_MISSION,
    2: MissionState.NOT_STARTED,
    3: MissionState.ACTIVE,
    4: MissionState.PAUSED,
    5: MissionState.COMPLETE,
}

# MAV_CMD numbers used here and by the backend
MAV_CMD_NAV_WAYPOINT = 16
MAV_CMD_NAV_RETURN_TO_LAUNCH = 20
MAV_CMD_NAV_LAND = 21
MAV_CMD_NAV_TAKEOFF = 22
MAV_CMD_NAV_DELAY = 93
MAV_CMD_DO_SET_MODE = 176
MAV_CMD_DO_CHANGE_SPEED = 178
MAV_CMD_DO_REPOSITION = 192
MAV_CMD_DO_GRIPPER = 211
MAV_CMD_MISSION_START = 300
MAV_CMD_COMPONENT_ARM_DISARM = 400
MAV_CMD_REQUEST_MESSAGE = 512
MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION = 5001
MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION = 5002
MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION = 5004

MSG_MISSION_CURRENT = 42
MSG_HOME_POSITION = 242

MAV_FRAME_GLOBAL_INT = 5
MAV_FRAME_GLOBAL_RELATIVE_ALT_INT = 6
MAV_FRAME_MISSION = 2
MAV_MISSION_TYPE_MISSION = 0
MAV_MISSION_TYPE_FENCE = 1
GRIPPER_ACTION_RELEASE = 0


def encode_mode(main_mode: int, sub_mode: int = 0) -> int:
    return (sub_mode << 24) | (main_mode << 16)


def decode_mode(custom_mode: int) -> tuple[int, int]:
    """custom_mode -> (main_mode, sub_mode)."""
    return (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF


def mode_name(custom_mode: int) -> str:
    """Our name for a PX4 custom_mode, e.g. 0x03040000 -> "HOLD"; unknown ones keep their number."""
    return _MODE_NAMES.get(custom_mode, f"UNKNOWN_0x{custom_mode:08x}")


def mode_number(name: str) -> int:
    """"HOLD" -> 0x03040000. Raises KeyError for a name PX4 does not have."""
    main_mode, sub_mode = PX4_MODES[name.upper()]
    return encode_mode(main_mode, sub_mode)


def kind_of_mav_type(mav_type: int) -> VehicleKind | None:
    if mav_type in _DRONE_TYPES:
        return "drone"
    if mav_type in _ROVER_TYPES:
        return "rover"
    return None


def mission_state(value: int) -> MissionState:
    return _MISSION_STATES.get(value, MissionState.UNKNOWN)


def result_name(result: int) -> str:
    return MAV_RESULT_NAMES.get(result, f"RESULT_{result}")


@dataclass(frozen=True, slots=True)
class RawItem:
    """One MISSION_ITEM_INT as PX4 stores it (x/y are degrees * 1e7)."""

    seq: int
    frame: int
    command: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0
    mission_type: int = MAV_MISSION_TYPE_MISSION
    current: int = 0
    autocontinue: int = 1


def _e7(deg: float) -> int:
    return round(deg * 1e7)


def mission_items(
    items: Sequence[MissionItem], kind: VehicleKind, *, takeoff_at: tuple[float, float] | None = None
) -> list[RawItem]:
    """Our mission -> the MISSION_ITEM_INTs PX4 flies (drone) or drives (rover).

    Drone: optional TakeOff first (PX4 takes off at `takeoff_at`, normally the current position),
    then waypoints/delays/payload releases, optional Land last. Rover: no TakeOff and no Land (PX4's
    rover never completes NAV_LAND), waypoints run on the ground (altitude ignored); at the end PX4
    holds, still armed. A waypoint speed becomes a DO_CHANGE_SPEED before it, for the leg to it.

    A drone's Delay is a NAV_WAYPOINT with a hold time (param1) where its last position item was,
    not a NAV_DELAY: PX4 keeps the setpoint through a NAV_DELAY, but re-derives its altitude from
    the current item whenever home moves (MissionBase::updateMissionAltAfterHomeChanged; in flight
    home's altitude is corrected for 120 s after take-off), and a NAV_DELAY (frame MISSION) reads
    as 0 m AMSL there: the quad sank to the ground in its hold. A rover keeps NAV_DELAY (PX4 only
    honours a waypoint's hold time on a multicopter, and a rover has no altitude to lose).
    """
    if not items:
        raise MissionInvalid("empty mission")
    out: list[RawItem] = []

    def add(frame: int, command: int, *, param1: float = 0.0, param2: float = 0.0, param3: float = 0.0,
            param4: float = 0.0, x: int = 0, y: int = 0, z: float = 0.0) -> None:
        # MAVSDK insists that exactly the first item is marked current
        out.append(RawItem(len(out), frame, command, param1, param2, param3, param4, x, y, z,
                           current=int(not out)))

    last = len(items) - 1
    at: tuple[float, float, float] | None = None  # (lat, lon, alt_m) of the last position item
    for i, item in enumerate(items):
        if isinstance(item, TakeOff):
            if kind == "rover":
                raise MissionInvalid("a rover cannot take off")
            if i != 0:
                raise MissionInvalid("TakeOff must be the first item")
            if takeoff_at is None:
                raise MissionInvalid("TakeOff needs the vehicle's position (none known yet)")
            if item.alt_m <= 0:
                raise MissionInvalid(f"take-off altitude must be positive, got {item.alt_m}")
            add(MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, MAV_CMD_NAV_TAKEOFF, param4=math.nan,
                x=_e7(takeoff_at[0]), y=_e7(takeoff_at[1]), z=item.alt_m)
            at = (takeoff_at[0], takeoff_at[1], item.alt_m)
        elif isinstance(item, Waypoint):
            if item.speed_m_s is not None:
                if item.speed_m_s <= 0:
                    raise MissionInvalid(f"waypoint {i}: speed must be positive")
                # param1 1 = ground speed; param3 -1 = leave throttle alone
                add(MAV_FRAME_MISSION, MAV_CMD_DO_CHANGE_SPEED, param1=1, param2=item.speed_m_s, param3=-1)
            alt_m = 0.0 if kind == "rover" else item.alt_m
            if kind == "drone" and alt_m <= 0:
                raise MissionInvalid(f"waypoint {i}: a drone waypoint needs a positive altitude")
            add(MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, MAV_CMD_NAV_WAYPOINT,
                param2=item.acceptance_m if item.acceptance_m is not None else 0.0,
                param4=math.nan, x=_e7(item.lat), y=_e7(item.lon), z=alt_m)
            at = (item.lat, item.lon, alt_m)
        elif isinstance(item, Land):
            if kind == "rover":
                raise MissionInvalid("a rover cannot Land (PX4 never completes NAV_LAND on a rover)")
            if i != last:
                raise MissionInvalid("Land must be the last item")
            add(MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, MAV_CMD_NAV_LAND, param4=math.nan,
                x=_e7(item.lat), y=_e7(item.lon), z=0.0)
        elif isinstance(item, Delay):
            if item.seconds < 0:
                raise MissionInvalid(f"delay {i}: negative duration")
            if kind == "rover":
                add(MAV_FRAME_MISSION, MAV_CMD_NAV_DELAY, param1=item.seconds, param2=-1, param3=-1, param4=-1)
            elif at is None:
                raise MissionInvalid(f"delay {i}: a drone's Delay must follow a TakeOff or Waypoint (where it holds)")
            else:
                add(MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, MAV_CMD_NAV_WAYPOINT, param1=item.seconds, param4=math.nan,
                    x=_e7(at[0]), y=_e7(at[1]), z=at[2])
        elif isinstance(item, PayloadRelease):
            # param1 gripper instance 1, param2 action 0 = release (PX4 payload_deliverer)
            add(MAV_FRAME_MISSION, MAV_CMD_DO_GRIPPER, param1=1, param2=GRIPPER_ACTION_RELEASE)
        else:  # pragma: no cover - the type union is closed
            raise MissionInvalid(f"unknown mission item {item!r}")
    return out


def fence_items(fence: Sequence[GeofenceItem]) -> list[RawItem]:
    """Our geofence -> PX4 fence items (mission_type FENCE, frame GLOBAL_INT)."""
    out: list[RawItem] = []
    for zone in fence:
        if isinstance(zone, InclusionPolygon | ExclusionPolygon):
            n = len(zone.vertices)
            if n < 3:
                # PX4 answers MAV_MISSION_ERROR after item 0 for this; say why before sending.
                raise GeofenceUploadFailed("INVALID_ARGUMENT", f"polygon with {n} vertices (needs 3+)")
            command = (MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION if isinstance(zone, InclusionPolygon)
                       else MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION)
            for lat, lon in zone.vertices:
                out.append(RawItem(len(out), MAV_FRAME_GLOBAL_INT, command, param1=n, x=_e7(lat), y=_e7(lon),
                                   mission_type=MAV_MISSION_TYPE_FENCE, current=int(not out)))
        elif isinstance(zone, ExclusionCircle):
            if zone.radius_m <= 0:
                raise GeofenceUploadFailed("INVALID_ARGUMENT", f"circle radius {zone.radius_m} m")
            out.append(RawItem(len(out), MAV_FRAME_GLOBAL_INT, MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
                               param1=zone.radius_m, x=_e7(zone.lat), y=_e7(zone.lon),
                               mission_type=MAV_MISSION_TYPE_FENCE, current=int(not out)))
        else:  # pragma: no cover - the type union is closed
            raise GeofenceUploadFailed("INVALID_ARGUMENT", f"unknown fence item {zone!r}")
    return out


def mission_seq_of_item(items: Sequence[MissionItem], raw: Sequence[RawItem]) -> list[int]:
    """For each of our items, the seq of its (last) raw item: maps MISSION_CURRENT back to our list."""
    seqs: list[int] = []
    j = 0
    for item in items:
        # a Waypoint with a speed is two raw items; the waypoint is the second
        if isinstance(item, Waypoint) and item.speed_m_s is not None:
            j += 1
        seqs.append(raw[j].seq)
        j += 1
    return seqs
