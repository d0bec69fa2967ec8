"""What the planner knows about a kind of vehicle: its limits and its power model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VehicleKind = Literal["drone", "robot"]


@dataclass(frozen=True)
class VehicleModel:
    """One vehicle model of a site (e.g. a delivery quad, a sidewalk robot).

    Power figures are electrical watts drawn from the battery. A drone draws `hover_power_w`
    when hovering with no payload and `cruise_power_w` in level flight at `cruise_speed_m_s`;
    payload raises both in proportion to total mass (induced power of a rotor grows with
    thrust^1.5, which `planner.energy` applies). A robot draws `rolling_power_w` at speed
    plus `idle_power_w` always.
    """

    name: str
    kind: VehicleKind
    max_payload_kg: float
    cruise_speed_m_s: float
    battery_wh: float
    empty_mass_kg: float
    hover_power_w: float = 0.0
    cruise_power_w: float = 0.0
    rolling_power_w: float = 0.0
    idle_power_w: float = 5.0
    climb_speed_m_s: float = 1.5
    descent_speed_m_s: float = 1.0
    max_wind_m_s: float = 12.0
    reserve_fraction: float = 0.2
    charge_power_w: float = 200.0

    def __post_init__(self) -> None:
        if self.kind not in ("drone", "robot"):
            raise ValueError(f"vehicle model {self.name!r}: kind must be 'drone' or 'robot', not {self.kind!r}")
        for label, value in (
            ("max_payload_kg", self.max_payload_kg),
            ("cruise_speed_m_s", self.cruise_speed_m_s),
            ("battery_wh", self.battery_wh),
            ("empty_mass_kg", self.empty_mass_kg),
        ):
            if not value > 0:
                raise ValueError(f"vehicle model {self.name!r}: {label} must be > 0, got {value}")
        if self.kind == "drone" and not (self.hover_power_w > 0 and self.cruise_power_w > 0):
            raise ValueError(f"drone model {self.name!r} needs hover_power_w and cruise_power_w > 0")
        if self.kind == "robot" and not self.rolling_power_w > 0:
            raise ValueError(f"robot model {self.name!r} needs rolling_power_w > 0")
        if not 0.0 <= self.reserve_fraction < 1.0:
            raise ValueError(f"vehicle model {self.name!r}: reserve_fraction must be in [0, 1)")

    @property
    def is_drone(self) -> bool:
        return self.kind == "drone"
