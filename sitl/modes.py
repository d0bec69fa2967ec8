"""PX4 flight modes as seen on the wire: custom_mode encoding, base_mode flags, system_status.

PX4 packs its mode as `custom_mode = (sub_mode << 24) | (main_mode << 16)`. Which modes DO_SET_MODE
actually takes, and which system_status a disarmed vehicle reports in each, follow the captures of
real PX4 in `shared/data/px4` (e.g. AUTO.READY and VTOL takeoff are ACKed but never taken).
"""

from __future__ import annotations

import enum
from typing import Literal

VehicleKind = Literal["quad", "rover"]


class MainMode(enum.IntEnum):
    MANUAL = 1
    ALTCTL = 2
    POSCTL = 3
    AUTO = 4
    ACRO = 5
    OFFBOARD = 6
    STABILIZED = 7
    RATTITUDE_LEGACY = 8
    TERMINATION = 10
    ALTITUDE_CRUISE = 11


class AutoSub(enum.IntEnum):
    READY = 1
    TAKEOFF = 2
    LOITER = 3
    MISSION = 4
    RTL = 5
    LAND = 6
    FOLLOW_TARGET = 8
    PRECLAND = 9
    VTOL_TAKEOFF = 10


def custom_mode(main: int, sub: int = 0) -> int:
    return ((sub & 0xFF) << 24) | ((main & 0xFF) << 16)


class Mode(enum.IntEnum):
    """The custom_mode values a simulated vehicle can be in."""

    MANUAL = custom_mode(MainMode.MANUAL)
    ALTCTL = custom_mode(MainMode.ALTCTL)
    POSCTL = custom_mode(MainMode.POSCTL)
    POSCTL_SLOW = custom_mode(MainMode.POSCTL, 2)
    TAKEOFF = custom_mode(MainMode.AUTO, AutoSub.TAKEOFF)
    LOITER = custom_mode(MainMode.AUTO, AutoSub.LOITER)
    MISSION = custom_mode(MainMode.AUTO, AutoSub.MISSION)
    RTL = custom_mode(MainMode.AUTO, AutoSub.RTL)
    LAND = custom_mode(MainMode.AUTO, AutoSub.LAND)
    FOLLOW_TARGET = custom_mode(MainMode.AUTO, AutoSub.FOLLOW_TARGET)
    PRECLAND = custom_mode(MainMode.AUTO, AutoSub.PRECLAND)
    ACRO = custom_mode(MainMode.ACRO)
    OFFBOARD = custom_mode(MainMode.OFFBOARD)
    STABILIZED = custom_mode(MainMode.STABILIZED)
    TERMINATION = custom_mode(MainMode.TERMINATION)
    ALTITUDE_CRUISE = custom_mode(MainMode.ALTITUDE_CRUISE)


MODE_NAMES: dict[int, str] = {
    Mode.MANUAL: "MANUAL",
    Mode.ALTCTL: "ALTCTL",
    Mode.POSCTL: "POSCTL",
    Mode.POSCTL_SLOW: "POSCTL_SLOW",
    Mode.TAKEOFF: "AUTO.TAKEOFF",
    Mode.LOITER: "AUTO.LOITER",
    Mode.MISSION: "AUTO.MISSION",
    Mode.RTL: "AUTO.RTL",
    Mode.LAND: "AUTO.LAND",
    Mode.FOLLOW_TARGET: "AUTO.FOLLOW_TARGET",
    Mode.PRECLAND: "AUTO.PRECLAND",
    Mode.ACRO: "ACRO",
    Mode.OFFBOARD: "OFFBOARD",
    Mode.STABILIZED: "STABILIZED",
    Mode.TERMINATION: "TERMINATION",
    Mode.ALTITUDE_CRUISE: "ALTITUDE_CRUISE",
}

# MAV_MODE_FLAG bits
FLAG_CUSTOM_MODE_ENABLED = 1
FLAG_AUTO_ENABLED = 4
FLAG_GUIDED_ENABLED = 8
FLAG_STABILIZE_ENABLED = 16
FLAG_MANUAL_INPUT_ENABLED = 64
FLAG_SAFETY_ARMED = 128

# MAV_STATE
STATE_UNINIT = 0
STATE_STANDBY = 3
STATE_ACTIVE = 4

_MANUAL_FAMILY = {MainMode.MANUAL, MainMode.ALTCTL, MainMode.POSCTL, MainMode.STABILIZED, MainMode.ALTITUDE_CRUISE}


def mode_name(mode: int) -> str:
    return MODE_NAMES.get(mode, f"0x{mode:08x}")


def main_of(mode: int) -> int:
    return (mode >> 16) & 0xFF


def sub_of(mode: int) -> int:
    return (mode >> 24) & 0xFF


def base_mode(mode: int, armed: bool, kind: VehicleKind) -> int:
    """HEARTBEAT.base_mode as PX4's commander builds it: 0x1D in AUTO, 0x51 in Position, +0x80 armed."""
    flags = FLAG_CUSTOM_MODE_ENABLED
    main = main_of(mode)
    if main == MainMode.MANUAL:
        flags |= FLAG_MANUAL_INPUT_ENABLED | (FLAG_STABILIZE_ENABLED if kind == "quad" else 0)
    elif main == MainMode.ACRO:
        flags |= FLAG_MANUAL_INPUT_ENABLED
    elif main in _MANUAL_FAMILY:
        flags |= FLAG_MANUAL_INPUT_ENABLED | FLAG_STABILIZE_ENABLED
    elif main in (MainMode.AUTO, MainMode.OFFBOARD):
        flags |= FLAG_AUTO_ENABLED | FLAG_GUIDED_ENABLED | FLAG_STABILIZE_ENABLED
    if armed:
        flags |= FLAG_SAFETY_ARMED
    return flags


def system_status(mode: int, armed: bool, can_arm_in_mode: bool) -> int:
    """ACTIVE when armed; disarmed, STANDBY only where the pre-arm checks for the mode pass, else UNINIT.

    Real PX4 reports UNINIT when disarmed in Position (no RC), Mission without a valid mission,
    RTL or Land, and STANDBY in Hold and AUTO.TAKEOFF.
    """
    if armed:
        return STATE_ACTIVE
    return STATE_STANDBY if can_arm_in_mode else STATE_UNINIT


def requested_mode(main: int, sub: int) -> tuple[bool, int | None]:
    """(known, mode to switch to or None) for DO_SET_MODE's custom main/sub mode.

    Known main modes are always ACKed ACCEPTED (twice) by PX4, even when they are not taken.
    """
    if main == MainMode.AUTO:
        table = {
            0: Mode.LOITER,  # sub 0 is treated as "auto, keep/choose": PX4 picks loiter
            AutoSub.TAKEOFF: Mode.TAKEOFF,
            AutoSub.LOITER: Mode.LOITER,
            AutoSub.MISSION: Mode.MISSION,
            AutoSub.RTL: Mode.RTL,
            AutoSub.LAND: Mode.LAND,
            AutoSub.FOLLOW_TARGET: Mode.FOLLOW_TARGET,
            AutoSub.PRECLAND: Mode.PRECLAND,
        }
        if sub in table:
            return True, table[sub]
        return True, None  # READY, VTOL takeoff and the external-mode slots: ACKed, not taken
    simple = {
        MainMode.MANUAL: Mode.MANUAL,
        MainMode.ALTCTL: Mode.ALTCTL,
        MainMode.ACRO: Mode.ACRO,
        MainMode.STABILIZED: Mode.STABILIZED,
        MainMode.ALTITUDE_CRUISE: Mode.ALTITUDE_CRUISE,
    }
    if main in simple:
        return True, simple[MainMode(main)]
    if main == MainMode.POSCTL:
        # 3/1 (Orbit) is reachable only via DO_ORBIT; DO_SET_MODE maps it to plain POSCTL.
        return True, Mode.POSCTL_SLOW if sub == 2 else Mode.POSCTL
    if main == MainMode.OFFBOARD:
        return True, Mode.OFFBOARD  # taken only with a setpoint stream (sitl.offboard)
    if main == MainMode.RATTITUDE_LEGACY:
        return True, None  # ignored by PX4
    if main == MainMode.TERMINATION:
        return True, None
    return False, None


# AVAILABLE_MODES as PX4 lists them: (custom_mode, standard_mode, name, properties)
STANDARD_NONE = 0
STANDARD_POSITION_HOLD = 1
STANDARD_ORBIT = 2
STANDARD_CRUISE = 3
STANDARD_ALTITUDE_HOLD = 4
STANDARD_SAFE_RECOVERY = 5
STANDARD_MISSION = 6
STANDARD_LAND = 7
STANDARD_TAKEOFF = 8
NOT_USER_SELECTABLE = 2


def available_modes(kind: VehicleKind) -> list[tuple[int, int, str, int]]:
    quad = kind == "quad"
    modes: list[tuple[int, int, str, int]] = [
        (Mode.MANUAL, STANDARD_NONE, "Manual", 0),
        (Mode.ALTCTL, STANDARD_ALTITUDE_HOLD if quad else STANDARD_NONE, "Altitude", 0),
        (Mode.POSCTL, STANDARD_POSITION_HOLD if quad else STANDARD_NONE, "Position", 0),
        (custom_mode(MainMode.POSCTL, 1), STANDARD_ORBIT if quad else STANDARD_NONE, "Orbit", 0),
        (Mode.POSCTL_SLOW, STANDARD_NONE, "Position Slow", 0),
        (Mode.TAKEOFF, STANDARD_TAKEOFF, "Takeoff", 0),
        (Mode.LOITER, STANDARD_NONE, "Hold", 0),
        (Mode.MISSION, STANDARD_MISSION, "Mission", 0),
        (Mode.RTL, STANDARD_SAFE_RECOVERY, "Return", 0),
        (Mode.LAND, STANDARD_LAND, "Land", 0),
        (Mode.FOLLOW_TARGET, STANDARD_NONE, "Follow Target", 0),
        (Mode.PRECLAND, STANDARD_NONE, "Precision Landing", 0),
        (custom_mode(MainMode.AUTO, AutoSub.VTOL_TAKEOFF), STANDARD_NONE, "VTOL Takeoff", 0),
    ]
    for sub in range(11, 19):
        modes.append((custom_mode(MainMode.AUTO, sub), STANDARD_NONE, "(Mode not available)", NOT_USER_SELECTABLE))
    modes += [
        (Mode.ACRO, STANDARD_NONE, "Acro", 0),
        (Mode.OFFBOARD, STANDARD_NONE, "Offboard", 0),
        (Mode.STABILIZED, STANDARD_NONE, "Stabilized", 0),
        (Mode.TERMINATION, STANDARD_NONE, "Termination", 0),
        (Mode.ALTITUDE_CRUISE, STANDARD_NONE, "Altitude Cruise", 0),
    ]
    return modes


def standard_mode_target(standard: int, kind: VehicleKind) -> int | None:
    """Mode for DO_SET_STANDARD_MODE, or None when PX4 answers FAILED for this vehicle."""
    table = {
        STANDARD_SAFE_RECOVERY: Mode.RTL,
        STANDARD_MISSION: Mode.MISSION,
        STANDARD_LAND: Mode.LAND,
        STANDARD_TAKEOFF: Mode.TAKEOFF,
    }
    if kind == "quad":
        table |= {
            STANDARD_POSITION_HOLD: Mode.POSCTL,
            STANDARD_ORBIT: Mode.POSCTL,
            STANDARD_ALTITUDE_HOLD: Mode.ALTCTL,
        }
    found = table.get(standard)
    return None if found is None else int(found)
