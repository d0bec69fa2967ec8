"""A small PX4 parameter table and the MAVLink parameter protocol (read, list, set).

Only parameters the simulator acts on (or that clients commonly read) exist; the values are PX4's
defaults for the SIH airframes. PX4 sets PARAM_ENCODE_BYTEWISE: an INT32 parameter travels as the
four bytes of the integer inside PARAM_VALUE's float field. An unknown name is answered like PX4's
parameter manager: no PARAM_VALUE, a STATUSTEXT "[pm] unknown param: NAME" where a GCS listens.
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
_PARAM_VALUE_SPEC = spec_for(mavlink2.MAVLink_param_value_message)


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
        statustext: Callable[[str, int], None],
        on_change: Callable[[str, float], None] | None = None,
    ) -> None:
        self._values = dict(table)
        self._names = list(table)
        self.sysid = sysid
        self._statustext = statustext
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
        if kind == "PARAM_REQUEST_READ" and msg.param_index >= 0:
            if msg.param_index < len(self._names):
                send(pack(_PARAM_VALUE_SPEC, self._value_fields(self._names[msg.param_index])))
            return True
        name = msg.param_id.rstrip("\x00")
        if name not in self._values:
            # PX4 (mavlink_parameters.cpp): an unknown name in PARAM_SET gets an INFO text, in
            # PARAM_REQUEST_READ nothing at all.
            if kind == "PARAM_SET":
                self._statustext(f"[pm] unknown param: {name}\t", 6)
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
