"""The service's one clock. Everything that reads the time (ETAs, time windows, timeouts, event
timestamps) reads it here, so a simulation sped up by k gives the service a clock sped up by k and
every time stays true in simulated time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    speed_factor: float

    def now(self) -> datetime:
        """The current (possibly simulated) time, UTC."""

    def wall_s(self, clock_s: float) -> float:
        """A duration on this clock -> wall seconds."""

    async def sleep(self, clock_s: float) -> None:
        """Sleep for a duration on this clock."""


class WallClock:
    """Real time."""

    speed_factor = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall_s(self, clock_s: float) -> float:
        return clock_s

    async def sleep(self, clock_s: float) -> None:
        await asyncio.sleep(max(clock_s, 0.0))


class ScaledClock:
    """Simulated time running `speed_factor` times faster than the wall clock since `epoch`.

    Simulated time is `epoch + (wall now - epoch) * speed_factor`: every process given the same epoch
    (the moment the simulation started) reads the same time, and a restarted service carries on
    where it was instead of starting simulated time over (default epoch: now)."""

    def __init__(self, speed_factor: float, epoch: datetime | None = None) -> None:
        if not speed_factor > 0:
            raise ValueError(f"speed_factor must be > 0, got {speed_factor}")
        self.speed_factor = float(speed_factor)
        self.epoch = epoch or datetime.now(UTC)
        if self.epoch.tzinfo is None:
            raise ValueError("the epoch needs a time zone")
        self._epoch_s = self.epoch.timestamp()

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=(time.time() - self._epoch_s) * self.speed_factor)

    def wall_s(self, clock_s: float) -> float:
        return clock_s / self.speed_factor

    async def sleep(self, clock_s: float) -> None:
        await asyncio.sleep(max(clock_s, 0.0) / self.speed_factor)
