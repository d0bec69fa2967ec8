"""Pacing of simulated time against the wall clock, with an honest account of when it falls behind.

Simulated time is made of fixed steps: it is exactly the steps computed, never the wall clock
times the speed factor. The pacer says how many steps the wall clock asks for now. A backlog of
up to `CATCH_UP_WALL_S` of wall time is worked off (a late wake-up, a slow step); beyond that the
host cannot keep up, and the backlog is given up instead of computed in a burst: simulated time
then runs slower than requested (as PX4's lockstep SIH does on a saturated host). Every time that
happens is a lag event; `behind_s` adds up the simulated seconds given up, and a warning (at most
one every `LOG_INTERVAL_WALL_S`) says so.

The pacer is pure arithmetic on the wall times it is given, so it is tested without a clock.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

# Lateness the scheduler catches up on: more than a few scheduler wake-ups' worth means the host
# is out of CPU, not that one wake-up was late.
CATCH_UP_WALL_S = 0.1
LOG_INTERVAL_WALL_S = 5.0


class Pacer:
    """Wall-clock schedule of a simulation of `step_s` steps run at `speed_factor`."""

    def __init__(self, speed_factor: float, step_s: float, wall_s: float, *,
                 catch_up_wall_s: float = CATCH_UP_WALL_S, name: str = "simulation") -> None:
        if not (speed_factor > 0 and math.isfinite(speed_factor)):
            raise ValueError(f"speed_factor must be a positive number, got {speed_factor}")
        if not (step_s > 0 and math.isfinite(step_s)):
            raise ValueError(f"step_s must be a positive number, got {step_s}")
        self.speed_factor = speed_factor
        self.step_s = step_s
        self.name = name
        self._catch_up_sim_s = catch_up_wall_s * speed_factor
        # Simulated time the wall clock asks for at wall time w: anchor_sim + (w - anchor_wall) * k.
        self._anchor_wall_s = wall_s
        self._anchor_sim_s = 0.0
        self.lag_events = 0
        self.behind_s = 0.0  # simulated seconds given up because the host could not keep up
        self._logged_wall_s = -math.inf
        self._unlogged_events = 0
        self._unlogged_behind_s = 0.0

    def owed_steps(self, wall_s: float, sim_s: float) -> int:
        """Steps due at `wall_s` when the simulation stands at `sim_s`; gives up a backlog too large."""
        owed_s = self._anchor_sim_s + (wall_s - self._anchor_wall_s) * self.speed_factor - sim_s
        if owed_s > self._catch_up_sim_s:
            # Keep one step owed, so the caller computes now instead of sleeping after the slip.
            self._fell_behind(owed_s - self.step_s, wall_s)
            self._anchor_wall_s = wall_s
            self._anchor_sim_s = sim_s + self.step_s
            return 1
        # The tolerance keeps a step due "now" from slipping to the next wake-up by float rounding.
        return max(0, math.floor(owed_s / self.step_s + 1e-9))

    def wait_wall_s(self, wall_s: float, sim_s: float) -> float:
        """Wall seconds from `wall_s` until the step after `sim_s` is due (0 when it is due)."""
        due_wall_s = self._anchor_wall_s + (sim_s + self.step_s - self._anchor_sim_s) / self.speed_factor
        return max(0.0, due_wall_s - wall_s)

    def _fell_behind(self, lost_s: float, wall_s: float) -> None:
        self.lag_events += 1
        self.behind_s += lost_s
        self._unlogged_events += 1
        self._unlogged_behind_s += lost_s
        if wall_s - self._logged_wall_s >= LOG_INTERVAL_WALL_S:
            log.warning(
                "%s cannot keep up with speed x%g: %d time(s) behind since the last warning, %.2f s of "
                "simulated time given up (%.2f s in all); simulated time runs slower than requested",
                self.name, self.speed_factor, self._unlogged_events, self._unlogged_behind_s, self.behind_s,
            )
            self._logged_wall_s = wall_s
            self._unlogged_events = 0
            self._unlogged_behind_s = 0.0
