"""Fault injection for one simulated vehicle (durations in simulated seconds).

`SimVehicle.faults` is a `Faults`; each method takes effect at once:

- `link_loss(duration_s)`: both links drop everything in and out.
- `packet_loss(rate)`: each packet in or out is dropped with probability `rate` (0 turns it off).
- `battery_drop(percent)`: the battery loses `percent` points of charge.
- `gps_loss(duration_s)`: no GPS fix: arming is refused, SYS_STATUS shows GPS unhealthy.
- `gripper_jam(on)`: DO_GRIPPER fails (COMMAND_ACK FAILED after the release time) and the
  payload stays on board.
- `wind_gust(speed_m_s, from_deg, duration_s)`: a gust from `from_deg` pushes an airborne quad.
- `refuse_arm(reason)`: arming is TEMPORARILY_REJECTED with STATUSTEXT "Arming denied: <reason>";
  None lifts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sitl.link import Link
from sitl.physics import Physics


@dataclass
class FaultState:
    gps_lost_until_s: float = -1.0
    gripper_jammed: bool = False
    refuse_arm_reason: str | None = None
    gust_until_s: float = -1.0
    gust_east_north_m_s: tuple[float, float] = (0.0, 0.0)
    log: list[tuple[float, str]] = field(default_factory=list)


class Faults:
    """The fault switches of one vehicle."""

    def __init__(self, *, clock: Callable[[], float], links: Sequence[Link], physics: Physics, index: int) -> None:
        self._clock = clock
        self._links = links
        self._physics = physics
        self._index = index
        self.state = FaultState()

    def _note(self, what: str) -> None:
        self.state.log.append((self._clock(), what))

    def link_loss(self, duration_s: float) -> None:
        until = self._clock() + max(duration_s, 0.0)
        for link in self._links:
            link.blocked_until_s = until
        self._note(f"link_loss {duration_s:g} s")

    def packet_loss(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"packet loss rate must be in [0, 1], got {rate}")
        for link in self._links:
            link.packet_loss = rate
        self._note(f"packet_loss {rate:g}")

    def battery_drop(self, percent: float) -> None:
        p = self._physics
        i = self._index
        p.energy_wh[i] = max(0.0, p.energy_wh[i] - p.capacity_wh[i] * percent / 100.0)
        self._note(f"battery_drop {percent:g} %")

    def gps_loss(self, duration_s: float) -> None:
        self.state.gps_lost_until_s = self._clock() + max(duration_s, 0.0)
        self._note(f"gps_loss {duration_s:g} s")

    def gripper_jam(self, on: bool = True) -> None:
        self.state.gripper_jammed = on
        self._note(f"gripper_jam {on}")

    def wind_gust(self, speed_m_s: float, from_deg: float, duration_s: float) -> None:
        # A wind "from" 270 deg blows towards the east.
        to_rad = math.radians(from_deg + 180.0)
        self.state.gust_east_north_m_s = (speed_m_s * math.sin(to_rad), speed_m_s * math.cos(to_rad))
        self.state.gust_until_s = self._clock() + max(duration_s, 0.0)
        self._note(f"wind_gust {speed_m_s:g} m/s from {from_deg:g} deg for {duration_s:g} s")

    def refuse_arm(self, reason: str | None) -> None:
        self.state.refuse_arm_reason = reason
        self._note(f"refuse_arm {reason!r}")

    # --- read by the vehicle ----------------------------------------------------------------
    @property
    def gps_ok(self) -> bool:
        return self._clock() >= self.state.gps_lost_until_s

    def apply_gust(self) -> None:
        """Write the current gust (or calm) into the physics arrays."""
        st = self.state
        if self._clock() < st.gust_until_s:
            self._physics.gust[self._index] = st.gust_east_north_m_s
        else:
            self._physics.gust[self._index] = (0.0, 0.0)
