"""Dispatch: *when* to decide (on a new order, a vehicle freed or lost, a zone change, and a periodic
tick) and, for now, *who* by a simple rule: the most urgent pending order goes to the nearest free
vehicle that can carry it there and back (`nearest_free_vehicle`). The assignment solver of
`planner/assign.py` replaces the rule; the seam (`Decide`) stays.

Decisions run one at a time (a decision reads the store, plans in a worker thread and writes the
sortie back), so two never hand one vehicle or one order out twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fleetctl.clock import Clock
from fleetctl.orders.model import Priority

log = logging.getLogger(__name__)

#: Decide at least this often (clock seconds) even when nothing wakes us: windows open with time.
DEFAULT_TICK_S = 30.0

Decide = Callable[[], Awaitable[int]]  # one round of decisions; returns how many sorties it started


@dataclass(frozen=True)
class PendingOrder:
    order_id: str
    kinds: tuple[str, ...]
    depot: str | None
    dropoff_xy_m: tuple[float, float]
    weight_kg: float
    priority: Priority
    latest_s: float  # window end, clock epoch seconds
    earliest_s: float


@dataclass(frozen=True)
class FreeVehicle:
    vehicle_id: str
    kind: str  # "drone" | "robot"
    depot: str
    xy_m: tuple[float, float]
    max_payload_kg: float


def urgency(order: PendingOrder) -> tuple[int, float]:
    """Medical first, then express, then the earliest deadline."""
    return (-order.priority.weight, order.latest_s)


def nearest_free_vehicle(order: PendingOrder, free: Sequence[FreeVehicle]) -> list[FreeVehicle]:
    """The free vehicles that could serve `order`, nearest to its drop-off first (the caller plans
    each in turn until one is feasible)."""
    # The parcel waits at its pickup depot: only vehicles based there can load it.
    able = [v for v in free if v.kind in order.kinds and v.max_payload_kg >= order.weight_kg
            and (order.depot is None or v.depot == order.depot)]
    return sorted(able, key=lambda v: math.dist(v.xy_m, order.dropoff_xy_m))


class Dispatcher:
    """Calls `decide` when woken or on every tick, one call at a time; pausable by the operator."""

    def __init__(self, decide: Decide, clock: Clock, *, tick_s: float = DEFAULT_TICK_S) -> None:
        self._decide = decide
        self._clock = clock
        self._tick_s = tick_s
        self._wake = asyncio.Event()
        self._reasons: list[str] = []
        self.paused = False
        self.rounds = 0
        self.failed_rounds = 0

    def wake(self, why: str) -> None:
        """Ask for a decision round soon (cheap; many wakes make one round)."""
        if len(self._reasons) < 32:
            self._reasons.append(why)
        self._wake.set()

    def wake_after(self, clock_s: float, why: str) -> None:
        """Ask for a decision round in `clock_s` clock seconds (e.g. a take-off held for traffic)."""
        asyncio.get_running_loop().call_later(self._clock.wall_s(clock_s), self.wake, why)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.wake("dispatch resumed")

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._clock.wall_s(self._tick_s)):
                    await self._wake.wait()
            except TimeoutError:
                self._reasons.append("tick")
            self._wake.clear()
            reasons, self._reasons = self._reasons, []
            if self.paused:
                continue
            self.rounds += 1
            try:
                started = await self._decide()
            except Exception:
                # A round that fails (a bug, or the store away for a moment) must not take intake and
                # the sorties in flight down with it: say so loudly, and decide again next time.
                self.failed_rounds += 1
                log.exception("dispatch round failed (%d so far); trying again at the next wake or tick",
                              self.failed_rounds)
                continue
            if started:
                log.info("dispatch (%s): %d sortie(s) started", ", ".join(dict.fromkeys(reasons)), started)
