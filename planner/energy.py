"""Battery energy per leg for drones and sidewalk robots, the reserve check, charge arithmetic.

Drone model (per leg: climb, cruise, descent, hover):
- hover, climb and descent draw hover power; level flight draws cruise power. Both scale with
  total mass as (m / m_empty)^1.5: a rotor's induced power grows with thrust^1.5 and thrust
  equals weight;
- climbing also lifts the total mass: m * g * h / `climb_efficiency` on top of hover power;
- the drone flies at `cruise_speed_m_s` through the air, so a headwind lowers ground speed and
  stretches the time (and air distance) spent on a leg; a crosswind costs a crab angle.
  Energy is power x time, so headwind raises it and tailwind lowers it.

Robot model: `rolling_power_w` while driving, half of it proportional to total mass (rolling
resistance) and half fixed (drivetrain, sensors), plus `idle_power_w` for the whole time
including waits (a robot waits at the door for the hand-off).

Energies are Wh; durations s. All functions are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from planner.errors import EnergyInfeasible, PayloadTooHeavy, WindLimitExceeded
from planner.vehicle_model import VehicleModel
from planner.wind import Wind

G_M_S2 = 9.80665
DEFAULT_CLIMB_EFFICIENCY = 0.6  # electrical -> potential energy while climbing
ROTOR_MASS_EXPONENT = 1.5  # induced power ~ thrust^1.5
ROBOT_MASS_SHARE = 0.5  # share of rolling power that scales with mass
_S_PER_H = 3600.0


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy and time of one leg (or a sum of legs), with the energy split by phase."""

    energy_wh: float
    duration_s: float
    climb_wh: float = 0.0
    cruise_wh: float = 0.0
    descent_wh: float = 0.0
    hover_wh: float = 0.0
    drive_wh: float = 0.0
    idle_wh: float = 0.0

    def __add__(self, other: EnergyEstimate) -> EnergyEstimate:
        return EnergyEstimate(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def zero(cls) -> EnergyEstimate:
        return cls(0.0, 0.0)


def _check_nonneg(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _check_payload(model: VehicleModel, payload_kg: float) -> None:
    _check_nonneg(payload_kg=payload_kg)
    if payload_kg > model.max_payload_kg:
        raise PayloadTooHeavy(model.name, payload_kg, model.max_payload_kg)


def mass_factor(model: VehicleModel, payload_kg: float) -> float:
    """Power multiplier for carrying `payload_kg` (1.0 when empty)."""
    _check_payload(model, payload_kg)
    ratio = (model.empty_mass_kg + payload_kg) / model.empty_mass_kg
    if model.is_drone:
        return float(ratio**ROTOR_MASS_EXPONENT)
    return (1.0 - ROBOT_MASS_SHARE) + ROBOT_MASS_SHARE * ratio


def wind_components(track_deg: float, wind_speed_m_s: float, wind_from_deg: float) -> tuple[float, float]:
    """(headwind, crosswind) in m/s for a track (deg clockwise from north) and a wind blowing FROM
    `wind_from_deg` (meteorological convention). Headwind < 0 is a tailwind."""
    return Wind(wind_speed_m_s, wind_from_deg).head_cross_m_s(track_deg)


def ground_speed_m_s(model: VehicleModel, headwind_m_s: float = 0.0, crosswind_m_s: float = 0.0) -> float:
    """Ground speed at cruise airspeed: crab into the crosswind, lose the headwind.

    Raises WindLimitExceeded above the model's `max_wind_m_s` or when no headway is possible.
    """
    wind = math.hypot(headwind_m_s, crosswind_m_s)
    if wind > model.max_wind_m_s:
        raise WindLimitExceeded(wind, model.max_wind_m_s, f"above the limit of {model.name!r}")
    airspeed = model.cruise_speed_m_s
    if abs(crosswind_m_s) >= airspeed:
        raise WindLimitExceeded(wind, model.max_wind_m_s, "crosswind at or above cruise airspeed leaves no headway")
    speed = math.sqrt(airspeed**2 - crosswind_m_s**2) - headwind_m_s
    if speed <= 0.05 * airspeed:
        raise WindLimitExceeded(wind, model.max_wind_m_s, "headwind leaves no useful headway")
    return speed


def drone_leg_energy(
    model: VehicleModel,
    *,
    distance_m: float,
    payload_kg: float = 0.0,
    climb_m: float = 0.0,
    descent_m: float = 0.0,
    hover_s: float = 0.0,
    headwind_m_s: float = 0.0,
    crosswind_m_s: float = 0.0,
    climb_efficiency: float = DEFAULT_CLIMB_EFFICIENCY,
) -> EnergyEstimate:
    """Energy of one drone leg: climb `climb_m`, cruise `distance_m` (ground), descend
    `descent_m`, hover `hover_s` (e.g. lowering a parcel)."""
    if not model.is_drone:
        raise ValueError(f"{model.name!r} is a {model.kind}, not a drone")
    _check_nonneg(distance_m=distance_m, climb_m=climb_m, descent_m=descent_m, hover_s=hover_s)
    if not 0 < climb_efficiency <= 1:
        raise ValueError(f"climb_efficiency must be in (0, 1], got {climb_efficiency}")
    factor = mass_factor(model, payload_kg)
    hover_w = model.hover_power_w * factor
    mass_kg = model.empty_mass_kg + payload_kg

    climb_s = climb_m / model.climb_speed_m_s
    climb_j = hover_w * climb_s + mass_kg * G_M_S2 * climb_m / climb_efficiency
    descent_s = descent_m / model.descent_speed_m_s
    descent_j = hover_w * descent_s
    hover_j = hover_w * hover_s
    # A hover-only leg must not fail on wind it never flies through.
    cruise_s = distance_m / ground_speed_m_s(model, headwind_m_s, crosswind_m_s) if distance_m > 0 else 0.0
    cruise_j = model.cruise_power_w * factor * cruise_s

    total_j = climb_j + descent_j + hover_j + cruise_j
    return EnergyEstimate(
        energy_wh=total_j / _S_PER_H,
        duration_s=climb_s + cruise_s + descent_s + hover_s,
        climb_wh=climb_j / _S_PER_H,
        cruise_wh=cruise_j / _S_PER_H,
        descent_wh=descent_j / _S_PER_H,
        hover_wh=hover_j / _S_PER_H,
    )


def drone_path_energy(
    model: VehicleModel,
    points: ArrayLike,
    *,
    payload_kg: float = 0.0,
    climb_m: float = 0.0,
    descent_m: float = 0.0,
    hover_s: float = 0.0,
    wind_speed_m_s: float = 0.0,
    wind_from_deg: float = 0.0,
    climb_efficiency: float = DEFAULT_CLIMB_EFFICIENCY,
) -> EnergyEstimate:
    """Like `drone_leg_energy` for a polyline (N, 2) in local metres (x east, y north), with the
    wind resolved into head/cross components per segment."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    total = drone_leg_energy(
        model,
        distance_m=0.0,
        payload_kg=payload_kg,
        climb_m=climb_m,
        descent_m=descent_m,
        hover_s=hover_s,
        climb_efficiency=climb_efficiency,
    )
    for (x0, y0), (x1, y1) in zip(pts[:-1].tolist(), pts[1:].tolist(), strict=True):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        track = math.degrees(math.atan2(x1 - x0, y1 - y0))  # clockwise from north
        head, cross = wind_components(track, wind_speed_m_s, wind_from_deg)
        total = total + drone_leg_energy(
            model, distance_m=length, payload_kg=payload_kg, headwind_m_s=head, crosswind_m_s=cross
        )
    return total


def robot_leg_energy(
    model: VehicleModel,
    *,
    distance_m: float,
    payload_kg: float = 0.0,
    idle_s: float = 0.0,
    speed_m_s: float | None = None,
) -> EnergyEstimate:
    """Energy of one robot leg: drive `distance_m` at `speed_m_s` (default cruise), then wait `idle_s`."""
    if model.is_drone:
        raise ValueError(f"{model.name!r} is a drone, not a robot")
    _check_nonneg(distance_m=distance_m, idle_s=idle_s)
    speed = model.cruise_speed_m_s if speed_m_s is None else speed_m_s
    if not speed > 0:
        raise ValueError(f"speed_m_s must be > 0, got {speed}")
    drive_s = distance_m / speed
    drive_j = model.rolling_power_w * mass_factor(model, payload_kg) * drive_s
    idle_j = model.idle_power_w * (drive_s + idle_s)
    return EnergyEstimate(
        energy_wh=(drive_j + idle_j) / _S_PER_H,
        duration_s=drive_s + idle_s,
        drive_wh=drive_j / _S_PER_H,
        idle_wh=idle_j / _S_PER_H,
    )


def reserve_wh(model: VehicleModel, reserve_fraction: float | None = None) -> float:
    """Energy that must remain at the end of a sortie (a fraction of full capacity)."""
    fraction = model.reserve_fraction if reserve_fraction is None else reserve_fraction
    if not 0 <= fraction < 1:
        raise ValueError(f"reserve_fraction must be in [0, 1), got {fraction}")
    return model.battery_wh * fraction


def check_feasible(
    model: VehicleModel,
    needed: float | EnergyEstimate,
    *,
    available_wh: float | None = None,
    reserve_fraction: float | None = None,
) -> float:
    """Margin in Wh left above the reserve after spending `needed`; raises EnergyInfeasible
    when `needed` exceeds what is available (default: a full battery) minus the reserve."""
    needed_wh = needed.energy_wh if isinstance(needed, EnergyEstimate) else float(needed)
    available = model.battery_wh if available_wh is None else float(available_wh)
    _check_nonneg(needed_wh=needed_wh, available_wh=available)
    reserve = reserve_wh(model, reserve_fraction)
    margin = available - reserve - needed_wh
    if margin < 0:
        raise EnergyInfeasible(needed_wh, available, reserve)
    return margin


def soc_to_wh(model: VehicleModel, soc_percent: float) -> float:
    """Energy held at a state of charge (percent of `battery_wh`)."""
    if not 0 <= soc_percent <= 100:
        raise ValueError(f"soc_percent must be in [0, 100], got {soc_percent}")
    return model.battery_wh * soc_percent / 100.0


def wh_to_soc(model: VehicleModel, energy_wh: float) -> float:
    """State of charge in percent for `energy_wh` held (not clamped: > 100 means over capacity)."""
    return 100.0 * energy_wh / model.battery_wh


def soc_after(model: VehicleModel, soc_percent: float, needed: float | EnergyEstimate) -> float:
    """State of charge after spending `needed` from `soc_percent` (may go below 0: infeasible)."""
    needed_wh = needed.energy_wh if isinstance(needed, EnergyEstimate) else float(needed)
    return soc_percent - wh_to_soc(model, needed_wh)


def recharge_time_s(model: VehicleModel, from_percent: float, to_percent: float = 100.0) -> float:
    """Time on the charger from one state of charge to another at `charge_power_w` (constant
    power; charger losses are folded into `charge_power_w`)."""
    if not model.charge_power_w > 0:
        raise ValueError(f"{model.name!r} has no charge power")
    delta_wh = soc_to_wh(model, to_percent) - soc_to_wh(model, from_percent)
    return max(delta_wh, 0.0) / model.charge_power_w * _S_PER_H
