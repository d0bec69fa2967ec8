"""From MAVSDK's callback thread to the asyncio loop.

mavsdk 4's `mavsdk.asyncio` plugin wrappers run every call in the loop's default executor (a handful
of threads on a small machine: a fleet waiting on uploads would starve it) and stream subscriptions
through unbounded queues with one loop wake-up per message (PX4 sends ~400 msg/s per vehicle). So
the backend uses the plugins' own callback APIs (`*_async(..., callback)`, `subscribe_*(callback)`)
and crosses into the loop here: one future per call, and one coalescing inbox for the whole fleet
(one loop wake-up per batch of messages, however many vehicles they came from).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

Apply = Callable[[], None]


def _settle(fut: asyncio.Future[tuple[Any, ...]], args: tuple[Any, ...]) -> None:
    if not fut.done():
        fut.set_result(args)


async def call_with_callback(start: Callable[[Callable[..., None]], object]) -> tuple[Any, ...]:
    """Run `start(callback)` and wait for MAVSDK to call back; returns the callback's arguments
    without the trailing user_data. Cancel it with `asyncio.timeout` around the await."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[Any, ...]] = loop.create_future()
    # mavsdk 4.1.0's wrapper keeps every `*_async` callback (and its ctypes trampoline) for the
    # plugin's lifetime: it cannot know when MAVSDK is done with it. Let it keep a small closure,
    # not the future with the answer in it.
    waiting = [fut]

    def callback(*args: Any) -> None:
        # IndexError: nobody waits any more; RuntimeError: the loop is gone.
        with contextlib.suppress(IndexError, RuntimeError):
            loop.call_soon_threadsafe(_settle, waiting[0], args[:-1])

    try:
        start(callback)
        return await fut
    finally:
        waiting.clear()


class Inbox:
    """Updates from MAVSDK's thread, applied on the loop in batches.

    `latest(key, fn)` keeps only the newest update per key (positions at 50 Hz coalesce into one);
    `ordered(fn)` keeps every update in order (status texts, mission progress), up to `max_ordered`
    pending (then the oldest goes). The loop is woken at most once per batch.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, after_batch: Callable[[], None], max_ordered: int = 64):
        self._loop = loop
        self._after_batch = after_batch
        self._max_ordered = max_ordered
        self._lock = threading.Lock()
        self._latest: dict[Hashable, Apply] = {}
        self._ordered: deque[Apply] = deque(maxlen=max_ordered)
        self._scheduled = False
        self._closed = False

    def latest(self, key: Hashable, fn: Apply) -> None:
        with self._lock:
            self._latest[key] = fn
            self._schedule_locked()

    def ordered(self, fn: Apply) -> None:
        with self._lock:
            self._ordered.append(fn)  # full: the oldest goes
            self._schedule_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _schedule_locked(self) -> None:
        if self._scheduled or self._closed:
            return
        try:
            self._loop.call_soon_threadsafe(self._flush)
            self._scheduled = True
        except RuntimeError:  # loop closed while MAVSDK still delivers
            self._closed = True

    def _flush(self) -> None:
        with self._lock:
            latest, self._latest = self._latest, {}
            ordered, self._ordered = self._ordered, deque(maxlen=self._max_ordered)
            self._scheduled = False
        for fn in latest.values():
            fn()
        for fn in ordered:
            fn()
        self._after_batch()
