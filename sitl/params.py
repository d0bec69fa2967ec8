"""A small PX4 parameter table and the MAVLink parameter protocol (read, list, set).

Only parameters the simulator acts on (or that clients commonly read) exist; the values are PX4's
defaults for the SIH airframes. PX4 sets PARAM_ENCODE_BYTEWISE: an INT32 parameter travels as the
four bytes of the integer inside PARAM_VALUE's float field.

Refusals are answered like PX4's parameter manager (mavlink_parameters.cpp at the captures' commit
02e73e3b6f; PARAM_SET of an unknown name is in the _b profiles, `commands.param_set_unknown`): a
PARAM_ERROR (#345) to the sender and nothing else, no PARAM_VALUE and no STATUSTEXT:

- PARAM_SET or PARAM_REQUEST_READ of an unknown name: the name, param_index -1, DOES_NOT_EXIST;
- PARAM_REQUEST_READ of an index past the table: that index, an empty name, DOES_NOT_EXIST.

Not modelled: PX4 also refuses a PARAM_SET whose param_type is neither INT32 nor REAL32
(TYPE_UNSUPPORTED, 6) or is not the parameter's own type (TYPE_MISMATCH, 7); this table stores the
value as the parameter's own type whatever param_type says.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import development as mavlink2

from sitl.codec import spec_for
from sitl.modes import VehicleKind

TYPE_INT32 = 6
TYPE_REAL32 = 9
ERROR_DOES_NOT_EXIST = 1  # MAV_PARAM_ERROR_DOES_NOT_EXIST
_PARAM_VALUE_SPEC = spec_for(mavlink2.MAVLink_param_value_message)
_PARAM_ERROR_SPEC = spec_for(mavlink2.MAVLink_param_error_message)


def default_params(kind: VehicleKind, sysid: int, datalink_timeout_s: float | None) -> dict[str, tuple[float, int]]:
    quad = kind == "quad"
    return {
        "MAV_SYS_ID": (sysid, TYPE_INT32),
        "SYS_AUTOSTART": (10040 if quad else 10045, TYPE_INT32),
        "MIS_TAKEOFF_ALT": (2.5, TYPE_REAL32),
        "RTL_RETURN_ALT": (30.0, TYPE_REAL32),
        "MPC_XY_CRUISE": (5.0, TYPE_REAL32),
        "MPC_TKO_SPEED": (1.5, TYPE_REAL32),
        "MPC_Z_V_AUTO_DN": (1.0, TYPE_REAL32),
        "MPC_LAND_SPEED": (0.7, TYPE_REAL32),
        "MPC_LAND_ALT2": (5.0, TYPE_REAL32),
        "RO_SPEED_LIM": (3.0, TYPE_REAL32),
        "NAV_ACC_RAD": (2.0 if quad else 0.5, TYPE_REAL32),
        "COM_DISARM_LAND": (2.0, TYPE_REAL32),
        "COM_DISARM_PRFLT": (10.0, TYPE_REAL32),
        "COM_OF_LOSS_T": (1.0, TYPE_REAL32),
        "COM_OBL_RC_ACT": (0, TYPE_INT32),
        "COM_DL_LOSS_T": (int(datalink_timeout_s or 10), TYPE_INT32),
        "NAV_DLL_ACT": (0 if datalink_timeout_s is None else 2, TYPE_INT32),
        "GF_ACTION": (2, TYPE_INT32),
        "BAT_LOW_THR": (0.15, TYPE_REAL32),
        "BAT_CRIT_THR": (0.07, TYPE_REAL32),
        "COM_LOW_BAT_ACT": (3, TYPE_INT32),
    }


def _wire_value(value: float, ptype: int) -> float:
    if ptype == TYPE_INT32:
        return float(struct.unpack("<f", struct.pack("<i", int(value)))[0])
    return float(value)


def _from_wire(value: float, ptype: int) -> float:
    if ptype == TYPE_INT32:
        return float(struct.unpack("<i", struct.pack("<f", value))[0])
    return float(value)


class Params:
    """One vehicle's parameters; `on_change(name, value)` lets the vehicle apply a change."""

    def __init__(
        self,
        table: dict[str, tuple[float, int]],
        *,
        sysid: int,
        on_change: Callable[[str, float], None] | None = None,
    ) -> None:
        self._values = dict(table)
        self._names = list(table)
        self.sysid = sysid
        self._on_change = on_change

    def get(self, name: str) -> float:
        return self._values[name][0]

    def set(self, name: str, value: float) -> None:
        ptype = self._values[name][1]
        self._values[name] = (float(int(value)) if ptype == TYPE_INT32 else float(value), ptype)
        if self._on_change is not None:
            self._on_change(name, self._values[name][0])

    def handle(self, msg: Any, send: Callable[[bytes], None], pack: Callable[[Any, Any], bytes]) -> bool:
        """Consume PARAM_* messages addressed to this system; `send` one packet at a time."""
        kind = msg.get_type()
        if kind not in ("PARAM_REQUEST_READ", "PARAM_REQUEST_LIST", "PARAM_SET"):
            return False
        if msg.target_system not in (0, self.sysid):
            return True
        if kind == "PARAM_REQUEST_LIST":
            for name in self._names:
                send(pack(_PARAM_VALUE_SPEC, self._value_fields(name)))
            return True
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        if kind == "PARAM_REQUEST_READ" and msg.param_index >= 0:
            if msg.param_index < len(self._names):
                send(pack(_PARAM_VALUE_SPEC, self._value_fields(self._names[msg.param_index])))
            else:
                send(pack(_PARAM_ERROR_SPEC, (*sender, b"", msg.param_index, ERROR_DOES_NOT_EXIST)))
            return True
        name = msg.param_id.rstrip("\x00")
        if name not in self._values:
            # param_index -1 says "identified by name" (PX4 leaves the field uninitialised here).
            send(pack(_PARAM_ERROR_SPEC, (*sender, name.encode(), -1, ERROR_DOES_NOT_EXIST)))
            return True
        if kind == "PARAM_SET":
            value = _from_wire(msg.param_value, self._values[name][1])
            if math.isfinite(value):
                self.set(name, value)
        send(pack(_PARAM_VALUE_SPEC, self._value_fields(name)))
        return True

    def _value_fields(self, name: str) -> tuple[Any, ...]:
        value, ptype = self._values[name]
        return (name.encode(), _wire_value(value, ptype), ptype, len(self._names), self._names.index(name))
