"""Fan-out of values to async readers without unbounded queues.

`Latest` holds one value and wakes readers when it changes: a slow reader skips to the newest
value, so telemetry at 50 Hz costs nothing when nobody reads it. `Fanout` gives every reader its
own bounded queue for one-off events and drops a slow reader's oldest event rather than growing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

T = TypeVar("T")


class Latest(Generic[T]):
    def __init__(self, value: T) -> None:
        self._value = value
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        self._value = value
        self._version += 1
        # Wake everyone waiting on this generation, then start a new one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def changes(self, *, include_current: bool = True) -> AsyncGenerator[T, None]:
        seen = -1 if include_current else self._version
        while True:
            if self._version != seen:
                seen = self._version
                yield self._value
                continue
            await self._changed.wait()


class Subscription(Generic[T]):
    """An async iterator over a `Fanout`, registered from the moment it is created (so nothing
    published between `subscribe()` and the first `anext` is missed)."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)

    def _put(self, item: T) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(item)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        return await self._queue.get()


class Fanout(Generic[T]):
    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        # Weak: a reader that walks away is collected and stops receiving.
        self._readers: weakref.WeakSet[Subscription[T]] = weakref.WeakSet()

    def publish(self, item: T) -> None:
        for reader in list(self._readers):
            reader._put(item)

    def subscribe(self) -> Subscription[T]:
        reader: Subscription[T] = Subscription(self._maxsize)
        self._readers.add(reader)
        return reader
