"""Offboard control as PX4 does it (px4-notes "Offboard"; commander's offboardCheck and failsafe).

- SET_POSITION_TARGET_LOCAL_NED in MAV_FRAME_LOCAL_NED (1), or BODY_NED (8) for velocities, with a
  velocity type mask (position ignored) or a position type mask (velocity ignored), is a setpoint.
  Local NED is north/east/down metres from where the vehicle booted (the EKF origin).
- The offboard signal counts once setpoints have kept coming, no gap over COM_OF_LOSS_T (1 s, so at
  least 1 Hz; use >= 2 Hz), for OFFBOARD_READY_S. Only then does DO_SET_MODE main 6 take Offboard: it
  is ACKed ACCEPTED either way (as every DO_SET_MODE) and the mode just stays when the signal is not there.
- In Offboard the vehicle follows the latest setpoint (a quad in 3D, a rover on the ground).
- No setpoint for more than COM_OF_LOSS_T while in Offboard: failsafe to RTL ("Failsafe activated";
  COM_OBL_RC_ACT 0 = Position needs RC, which SIH lacks). The mode the user selected stays Offboard:
  once the RTL ends in a disarm the vehicle is back in Offboard without a signal, so arming is refused
  ("Resolve system health failures first") until another mode is selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sitl import events
from sitl.events import args
from sitl.modes import Mode

if TYPE_CHECKING:
    from sitl.vehicle import SimVehicle

FRAME_LOCAL_NED = 1
FRAME_BODY_NED = 8
IGNORE_POSITION = 0b111
IGNORE_VELOCITY = 0b111 << 3
OFFBOARD_READY_S = 1.0
SPOOLUP_S = 1.0
AHEAD_S = 10.0  # a velocity setpoint becomes a position target this far ahead (never reached)
SEVERITY_CRITICAL = 2


@dataclass(frozen=True)
class Setpoint:
    received_s: float
    velocity: bool  # else a position
    north: float  # m or m/s
    east: float
    down: float


class Offboard:
    """Setpoint stream, Offboard mode control and the offboard-loss failsafe of one vehicle."""

    def __init__(self, vehicle: SimVehicle) -> None:
        self.v = vehicle
        self.setpoint: Setpoint | None = None
        self._stream_since_s: float | None = None
        self.failsafe_active = False  # in RTL because the stream stopped; the selected mode is Offboard

    @property
    def loss_timeout_s(self) -> float:
        return self.v.params.get("COM_OF_LOSS_T")

    # --- input ----------------------------------------------------------------------------------
    def on_setpoint(self, msg: Any) -> None:
        """SET_POSITION_TARGET_LOCAL_NED addressed to this vehicle."""
        v = self.v
        if msg.target_system not in (0, v.sysid):
            return
        mask = int(msg.type_mask)
        velocity = not mask & IGNORE_VELOCITY
        position = not mask & IGNORE_POSITION
        if velocity == position:
            return  # only pure velocity or pure position setpoints are modelled
        frame = int(msg.coordinate_frame)
        if frame == FRAME_BODY_NED and velocity:
            yaw = float(v.physics.yaw[v.index])
            north = msg.vx * math.cos(yaw) - msg.vy * math.sin(yaw)
            east = msg.vx * math.sin(yaw) + msg.vy * math.cos(yaw)
            values = (north, east, float(msg.vz))
        elif frame == FRAME_LOCAL_NED:
            values = (msg.vx, msg.vy, msg.vz) if velocity else (msg.x, msg.y, msg.z)
        else:
            return
        if not all(math.isfinite(x) for x in values):
            return
        now = v.now_s()
        if self.setpoint is None or now - self.setpoint.received_s > self.loss_timeout_s:
            self._stream_since_s = now
        self.setpoint = Setpoint(now, velocity, float(values[0]), float(values[1]), float(values[2]))

    def signal_ok(self) -> bool:
        """PX4's `offboard_control_signal_lost` inverted: a fresh setpoint from a stream >= 1 s old."""
        sp = self.setpoint
        if sp is None or self._stream_since_s is None:
            return False
        now = self.v.now_s()
        return now - sp.received_s <= self.loss_timeout_s and now - self._stream_since_s >= OFFBOARD_READY_S

    # --- mode -----------------------------------------------------------------------------------
    def on_mode(self, new: int) -> None:
        if new != Mode.RTL:
            self.failsafe_active = False

    def mode_after_landing(self) -> int:
        """Where a vehicle goes once it disarmed after RTL or Land: Hold, or back to the selected Offboard."""
        if self.failsafe_active:
            self.failsafe_active = False
            return int(Mode.OFFBOARD)
        return int(Mode.LOITER)

    def tick(self, now_s: float) -> None:
        """The offboard-loss failsafe (the checks run before the control)."""
        v = self.v
        if v.mode != Mode.OFFBOARD or not v.armed or self.signal_ok():
            return
        sp = self.setpoint
        if sp is not None and now_s - sp.received_s <= self.loss_timeout_s:
            return  # a young stream that is still coming
        v.event("commander_failsafe_enter_generic", events.CRITICAL, args("IB", v.mode, events.ACTION_RTL),
                events.WARNING)
        v.statustext("Failsafe activated\t", SEVERITY_CRITICAL)
        v.set_mode(Mode.RTL)
        self.failsafe_active = True

    def control(self, now_s: float) -> None:
        """Drive the physics towards the latest setpoint (Offboard mode, armed)."""
        v = self.v
        p = v.physics
        i = v.index
        e, n, u = v.position_enu
        sp = self.setpoint
        if sp is None:
            p.target[i] = (e, n, u)
            return
        if sp.velocity:
            goal = (e + sp.east * AHEAD_S, n + sp.north * AHEAD_S, u - sp.down * AHEAD_S)
            p.speed_xy[i] = math.hypot(sp.north, sp.east)
            p.climb[i] = max(-sp.down, 0.0)
            p.descent[i] = max(sp.down, 0.0)
        else:
            goal = (sp.east, sp.north, -sp.down)
            p.speed_xy[i] = v.navigator.cruise_m_s
            p.climb[i] = v.params.get("MPC_TKO_SPEED")
            p.descent[i] = v.params.get("MPC_Z_V_AUTO_DN")
        up = goal[2]
        if not v.is_quad or (not v.airborne and now_s - v.armed_s < SPOOLUP_S):
            up = 0.0 if not v.is_quad else u  # a rover stays on the ground; motors still spooling up
        p.target[i] = (goal[0], goal[1], up)
        p.heading_hint[i] = math.nan
