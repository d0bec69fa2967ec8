"""Wind at cruise height, in the two forms the planner meets it.

Operators and weather reports give speed and the direction the wind blows FROM (meteorological
convention); path geometry wants the air-mass velocity (where it blows TO) in east/north metres
per second, and each leg wants it split into head- and crosswind along its track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Wind:
    speed_m_s: float = 0.0
    from_deg: float = 0.0

    @classmethod
    def from_east_north(cls, east_m_s: float, north_m_s: float) -> Wind:
        """From the air-mass velocity (where the wind blows to)."""
        speed = math.hypot(east_m_s, north_m_s)
        to_deg = math.degrees(math.atan2(east_m_s, north_m_s))
        return cls(speed, (to_deg + 180.0) % 360.0)

    @property
    def east_north_m_s(self) -> tuple[float, float]:
        """Air-mass velocity (where the wind blows TO), east and north."""
        to_rad = math.radians(self.from_deg + 180.0)
        return self.speed_m_s * math.sin(to_rad), self.speed_m_s * math.cos(to_rad)

    def head_cross_m_s(self, track_deg: float) -> tuple[float, float]:
        """(headwind, |crosswind|) for a track in degrees clockwise from north; headwind < 0 is a tailwind."""
        rel = math.radians(self.from_deg - track_deg)
        return self.speed_m_s * math.cos(rel), abs(self.speed_m_s * math.sin(rel))


def track_deg(dx_east_m: float, dy_north_m: float) -> float:
    """Track of a displacement in degrees clockwise from north."""
    return math.degrees(math.atan2(dx_east_m, dy_north_m))
