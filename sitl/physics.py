"""Point-mass physics and battery of every simulated vehicle, stepped together with numpy.

Each vehicle tracks a position target the navigator sets (local east/north/up metres around its
own spawn point) under speed and acceleration limits, so one vectorised step serves the whole
fleet: a multicopter moves freely in 3D (climb 1.5 m/s, cruise 5 m/s, land 1 m/s as PX4's
MPC_TKO_SPEED / MPC_XY_CRUISE / MPC_LAND_SPEED); an Ackermann rover drives along its heading,
turning no faster than its minimum radius allows (RO_SPEED_LIM 3 m/s). Wind gusts push airborne
multicopters off their track (the position controller rejects most of it).

The battery is an energy store drained by a power model (hover/cruise/payload for a multicopter,
rolling for a rover, idle always) and recharged on the pad while disarmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.vehicle_model import VehicleModel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

QUAD_CRUISE_M_S = 5.0  # MPC_XY_CRUISE
QUAD_CLIMB_M_S = 1.5  # MPC_TKO_SPEED
QUAD_LAND_M_S = 1.0  # observed descent of real PX4's SIH quad
# Effective (jerk-limited) accelerations that reproduce real PX4 SIH's leg times: 50 m in 13.3 s,
# 100 m in ~24.6 s at 5 m/s, a 20 m take-off climb in ~16.6 s.
QUAD_ACCEL_XY_M_S2 = 1.0
QUAD_BRAKE_XY_M_S2 = 2.0
QUAD_ACCEL_Z_M_S2 = 0.4
QUAD_YAW_RATE_RAD_S = 0.785  # MPC_YAWRAUTO_MAX 45 deg/s
ROVER_SPEED_M_S = 3.0  # RO_SPEED_LIM
ROVER_ACCEL_M_S2 = 1.5
ROVER_MIN_TURN_RADIUS_M = 2.0
ROVER_STOP_RADIUS_M = 0.3
# Share of a gust's speed that shows up as drift: PX4's position controller rejects the rest.
GUST_DRIFT_SHARE = 0.15

DEFAULT_QUAD_MODEL = VehicleModel(
    name="sim-quad",
    kind="drone",
    max_payload_kg=2.0,
    cruise_speed_m_s=QUAD_CRUISE_M_S,
    battery_wh=180.0,
    empty_mass_kg=2.0,
    hover_power_w=350.0,
    cruise_power_w=320.0,
    idle_power_w=5.0,
    charge_power_w=300.0,
)
DEFAULT_ROVER_MODEL = VehicleModel(
    name="sim-rover",
    kind="robot",
    max_payload_kg=10.0,
    cruise_speed_m_s=ROVER_SPEED_M_S,
    battery_wh=400.0,
    empty_mass_kg=25.0,
    rolling_power_w=60.0,
    idle_power_w=8.0,
    charge_power_w=200.0,
)


@dataclass(frozen=True)
class BodyState:
    """One vehicle's kinematic state, copied out of the arrays."""

    east_m: float
    north_m: float
    up_m: float
    vel_east_m_s: float
    vel_north_m_s: float
    vel_up_m_s: float
    yaw_rad: float
    battery_fraction: float
    power_w: float


class Physics:
    """Arrays of N vehicles; index i belongs to the vehicle that `add` returned i for."""

    def __init__(self) -> None:
        self.n = 0
        self.pos = np.zeros((0, 3))
        self.vel = np.zeros((0, 3))
        self.yaw = np.zeros(0)
        self.heading_hint = np.zeros(0)  # NaN: face the target; else turn to this heading (rad)
        self.target = np.zeros((0, 3))
        self.speed_xy = np.zeros(0)
        self.climb = np.zeros(0)
        self.descent = np.zeros(0)
        self.powered = np.zeros(0, dtype=bool)
        self.rover = np.zeros(0, dtype=bool)
        self.gust = np.zeros((0, 2))
        self.energy_wh = np.zeros(0)
        self.capacity_wh = np.zeros(0)
        self.hover_w = np.zeros(0)
        self.cruise_w = np.zeros(0)
        self.rolling_w = np.zeros(0)
        self.idle_w = np.zeros(0)
        self.charge_w = np.zeros(0)
        self.cruise_ref = np.zeros(0)
        self.mass_kg = np.zeros(0)
        self.payload_kg = np.zeros(0)
        self.charging = np.zeros(0, dtype=bool)
        self.power_w = np.zeros(0)

    def add(self, is_rover: bool, model: VehicleModel | None = None) -> int:
        m = model or (DEFAULT_ROVER_MODEL if is_rover else DEFAULT_QUAD_MODEL)
        i = self.n
        self.n += 1

        def grow(arr: Any, value: object) -> Any:
            extra = np.array([value], dtype=arr.dtype).reshape((1, *arr.shape[1:]))
            return np.concatenate([arr, extra])

        self.pos = grow(self.pos, [0.0, 0.0, 0.0])
        self.vel = grow(self.vel, [0.0, 0.0, 0.0])
        self.yaw = grow(self.yaw, 0.0)
        self.heading_hint = grow(self.heading_hint, np.nan)
        self.target = grow(self.target, [0.0, 0.0, 0.0])
        self.speed_xy = grow(self.speed_xy, ROVER_SPEED_M_S if is_rover else QUAD_CRUISE_M_S)
        self.climb = grow(self.climb, QUAD_CLIMB_M_S)
        self.descent = grow(self.descent, QUAD_LAND_M_S)
        self.powered = grow(self.powered, False)
        self.rover = grow(self.rover, is_rover)
        self.gust = grow(self.gust, [0.0, 0.0])
        self.energy_wh = grow(self.energy_wh, m.battery_wh)
        self.capacity_wh = grow(self.capacity_wh, m.battery_wh)
        self.hover_w = grow(self.hover_w, m.hover_power_w)
        self.cruise_w = grow(self.cruise_w, m.cruise_power_w)
        self.rolling_w = grow(self.rolling_w, m.rolling_power_w)
        self.idle_w = grow(self.idle_w, m.idle_power_w)
        self.charge_w = grow(self.charge_w, m.charge_power_w)
        self.cruise_ref = grow(self.cruise_ref, m.cruise_speed_m_s)
        self.mass_kg = grow(self.mass_kg, m.empty_mass_kg)
        self.payload_kg = grow(self.payload_kg, 0.0)
        self.charging = grow(self.charging, False)
        self.power_w = grow(self.power_w, 0.0)
        return i

    def state(self, i: int) -> BodyState:
        p = self.pos[i]
        v = self.vel[i]
        return BodyState(
            float(p[0]), float(p[1]), float(p[2]), float(v[0]), float(v[1]), float(v[2]),
            float(self.yaw[i]), float(self.energy_wh[i] / self.capacity_wh[i]), float(self.power_w[i]),
        )

    def step(self, dt_s: float) -> None:
        """Advance every vehicle by `dt_s` of simulated time."""
        if self.n == 0:
            return
        self._move(dt_s)
        self._battery(dt_s)

    def _move(self, dt: float) -> None:
        powered = self.powered
        rover = self.rover
        quad = ~rover
        d = self.target - self.pos
        d_xy = d[:, :2]
        dist_xy = np.hypot(d_xy[:, 0], d_xy[:, 1])
        accel_xy = np.where(rover, ROVER_ACCEL_M_S2, QUAD_ACCEL_XY_M_S2)
        brake_xy = np.where(rover, ROVER_ACCEL_M_S2, QUAD_BRAKE_XY_M_S2)
        # Speed that still lets the vehicle stop at the target, capped by the cruise speed.
        v_xy = np.minimum(self.speed_xy, np.minimum(np.sqrt(2.0 * brake_xy * dist_xy) * 0.9, 1.5 * dist_xy))
        # A rover cannot turn on the spot: closer than this it just stops rather than circling.
        v_xy = np.where(rover & (dist_xy < ROVER_STOP_RADIUS_M), 0.0, v_xy)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(dist_xy[:, None] > 1e-6, d_xy / dist_xy[:, None], 0.0)
        # Multicopter heading: PX4 (MPC_YAW_MODE 0) turns towards the next target at
        # MPC_YAWRAUTO_MAX and does not accelerate sideways until the heading is roughly there.
        bearing = np.arctan2(unit[:, 0], unit[:, 1])
        goal_yaw = np.where(np.isnan(self.heading_hint), np.where(dist_xy > 2.0, bearing, self.yaw), self.heading_hint)
        quad_err = (goal_yaw - self.yaw + np.pi) % (2 * np.pi) - np.pi
        max_yaw = QUAD_YAW_RATE_RAD_S * dt
        quad_yaw = self.yaw + np.clip(quad_err, -max_yaw, max_yaw)
        aligned = np.clip((0.6 - np.abs(quad_err)) / 0.3, 0.0, 1.0)
        v_xy = np.where(rover | (dist_xy <= 2.0), v_xy, v_xy * aligned)
        want_xy = unit * v_xy[:, None]

        dz = d[:, 2]
        rate = np.where(dz > 0, self.climb, self.descent)
        v_z = np.minimum(rate, np.minimum(np.sqrt(2.0 * QUAD_ACCEL_Z_M_S2 * np.abs(dz)), 1.5 * np.abs(dz)))
        want_z = np.sign(dz) * v_z
        want_z = np.where(quad & powered, want_z, 0.0)

        # Multicopter: accelerate the velocity vector towards the wanted one.
        dv = want_xy - self.vel[:, :2]
        dv_norm = np.hypot(dv[:, 0], dv[:, 1])
        speeding_up = np.hypot(want_xy[:, 0], want_xy[:, 1]) > np.hypot(self.vel[:, 0], self.vel[:, 1])
        max_dv = np.where(speeding_up, accel_xy, brake_xy) * dt
        scale = np.where(dv_norm > max_dv, max_dv / np.maximum(dv_norm, 1e-9), 1.0)
        quad_vxy = self.vel[:, :2] + dv * scale[:, None]

        # Rover: turn the heading towards the target at the rate the turn radius allows, and
        # drive along it (slower while the heading is still far off).
        speed_now = np.hypot(self.vel[:, 0], self.vel[:, 1])
        err = (bearing - self.yaw + np.pi) % (2 * np.pi) - np.pi
        err = np.where(dist_xy > 0.05, err, 0.0)
        max_turn = np.maximum(speed_now, 0.5) / ROVER_MIN_TURN_RADIUS_M * dt
        rover_yaw = self.yaw + np.clip(err, -max_turn, max_turn)
        rover_want = v_xy * np.clip(np.cos(err), 0.0, 1.0)
        rover_speed = speed_now + np.clip(rover_want - speed_now, -ROVER_ACCEL_M_S2 * dt, ROVER_ACCEL_M_S2 * dt)
        rover_vxy = np.stack([np.sin(rover_yaw) * rover_speed, np.cos(rover_yaw) * rover_speed], axis=1)

        vxy = np.where(rover[:, None], rover_vxy, quad_vxy)
        vxy = np.where(powered[:, None], vxy, 0.0)
        vz_now = self.vel[:, 2]
        vz = vz_now + np.clip(want_z - vz_now, -QUAD_ACCEL_Z_M_S2 * dt, QUAD_ACCEL_Z_M_S2 * dt)
        vz = np.where(quad & powered, vz, 0.0)

        airborne = quad & powered & (self.pos[:, 2] > 0.05)
        drift = np.where(airborne[:, None], self.gust * GUST_DRIFT_SHARE, 0.0)

        self.vel[:, :2] = vxy
        self.vel[:, 2] = vz
        self.pos[:, :2] += (vxy + drift) * dt
        self.pos[:, 2] = np.maximum(self.pos[:, 2] + vz * dt, 0.0)
        on_ground = self.pos[:, 2] <= 0.0
        self.vel[:, 2] = np.where(on_ground & (vz < 0), 0.0, self.vel[:, 2])
        new_yaw = np.where(rover, rover_yaw, quad_yaw)
        self.yaw = np.where(powered, (new_yaw + np.pi) % (2 * np.pi) - np.pi, self.yaw)

    def _battery(self, dt: float) -> None:
        rover = self.rover
        speed = np.hypot(self.vel[:, 0], self.vel[:, 1])
        airborne = ~rover & self.powered & (self.pos[:, 2] > 0.05)
        mass_factor = ((self.mass_kg + self.payload_kg) / self.mass_kg) ** 1.5
        frac = np.clip(speed / np.maximum(self.cruise_ref, 0.1), 0.0, 1.5)
        air_w = (self.hover_w + (self.cruise_w - self.hover_w) * np.minimum(frac, 1.0)) * mass_factor
        gust_w = 2.0 * (self.gust[:, 0] ** 2 + self.gust[:, 1] ** 2)
        air_w = air_w + gust_w + 8.0 * np.abs(self.vel[:, 2])
        ground_w = np.where(rover & self.powered, self.rolling_w * np.minimum(frac, 1.0) * (1 + self.payload_kg / self.mass_kg), 0.0)
        armed_idle = np.where(self.powered & ~airborne & ~rover, 0.1 * self.hover_w, 0.0)
        power = self.idle_w + np.where(airborne, air_w, ground_w + armed_idle)
        power = np.where(self.charging, -self.charge_w, power)
        self.power_w = power
        self.energy_wh = np.clip(self.energy_wh - power * dt / 3600.0, 0.0, self.capacity_wh)
