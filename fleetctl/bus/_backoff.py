"""Reconnect delays: exponential, capped, jittered."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays of min_s, 2*min_s, 4*min_s ... up to max_s, each scaled by a random factor in [0.5, 1],
    so that many services that lost the same broker do not all come back in the same instant."""

    def __init__(self, min_s: float, max_s: float, rand: Callable[[], float] = random.random) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rand = rand

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.min_s * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return ceiling * (0.5 + 0.5 * self._rand())

    def reset(self) -> None:
        self.attempt = 0
