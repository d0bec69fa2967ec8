"""The sending side: messages waiting for the broker, kept in order across reconnects."""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections import deque

from fleetctl.errors import BusError, BusQueueFull


class _State(enum.Enum):
    PENDING = "pending"  # not yet handed to a connection
    INFLIGHT = "inflight"  # handed to paho on the current connection, no PUBACK yet
    DONE = "done"
    WITHDRAWN = "withdrawn"


class Delivery:
    """One message on its way to the broker. For QoS 1 it is done when the broker acknowledged it
    (PUBACK); for QoS 0 when it was written to the socket."""

    __slots__ = ("_future", "_state", "payload", "qos", "retain", "seq", "topic")

    def __init__(self, seq: int, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.seq = seq
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self._state = _State.PENDING
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(self) -> bool:
        """Whether the broker has it (or it failed, or was withdrawn)."""
        return self._future.done()

    @property
    def delivered(self) -> bool:
        return self._state is _State.DONE

    @property
    def sent(self) -> bool:
        """Whether it was handed to a connection at least once: withdrawing is then too late, it may
        already be at the broker."""
        return self._state is not _State.PENDING

    async def wait(self) -> None:
        """Wait until the broker has it; BusError if the Bus closed first, CancelledError if it was
        withdrawn. Cancelling the waiter leaves the message queued."""
        await asyncio.shield(self._future)

    def __repr__(self) -> str:
        return f"Delivery(#{self.seq} {self.topic!r} qos={self.qos} {self._state.value})"


class Outbox:
    """Bounded FIFO of Deliveries with an in-flight set. On a lost connection the in-flight QoS 1
    messages go back to the front, in their original order, and are sent again on the next
    connection (at-least-once: the broker may have had one whose PUBACK we never saw); QoS 0 messages
    not yet written are dropped, as telemetry is worthless late."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seq = itertools.count(1)
        self._pending: deque[Delivery] = deque()
        self._inflight: dict[int, Delivery] = {}
        self._count = 0  # pending and in flight, withdrawn ones not counted
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed: BusError | None = None

    def __len__(self) -> int:
        return self._count

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> Delivery:
        """Queue a message; BusQueueFull when `limit` messages already wait."""
        if self._closed is not None:
            raise self._closed
        if self._count >= self.limit:
            raise BusQueueFull(self.limit)
        delivery = Delivery(next(self._seq), topic, payload, qos, retain)
        self._pending.append(delivery)
        self._count += 1
        self._ready.set()
        self._idle.clear()
        return delivery

    def withdraw(self, delivery: Delivery) -> bool:
        """Take back a message that was never handed to a connection. False if it is in flight or
        done already."""
        if delivery._state is not _State.PENDING:
            return False
        delivery._state = _State.WITHDRAWN
        delivery._future.cancel()
        self._count -= 1
        self._check_idle()
        return True

    async def take(self) -> Delivery:
        """The next message to send, now counted in flight."""
        while True:
            while not self._pending:
                self._ready.clear()
                await self._ready.wait()
            delivery = self._pending.popleft()
            if delivery._state is _State.WITHDRAWN:
                continue
            delivery._state = _State.INFLIGHT
            self._inflight[delivery.seq] = delivery
            return delivery

    def confirm(self, delivery: Delivery) -> None:
        if self._inflight.pop(delivery.seq, None) is None:
            return  # requeued or failed meanwhile
        delivery._state = _State.DONE
        if not delivery._future.done():
            delivery._future.set_result(None)
        self._count -= 1
        self._check_idle()

    def connection_lost(self) -> int:
        """Put the in-flight QoS 1 messages back in front, oldest first; drop unsent QoS 0 messages.
        Returns how many QoS 0 messages were dropped."""
        back = sorted((d for d in self._inflight.values() if d.qos > 0), key=lambda d: d.seq)
        dropped = [d for d in (*self._inflight.values(), *self._pending) if d.qos == 0
                   and d._state is not _State.WITHDRAWN]
        self._inflight.clear()
        kept = [d for d in self._pending if d.qos > 0 and d._state is not _State.WITHDRAWN]
        self._pending = deque(back + kept)
        for delivery in back:
            delivery._state = _State.PENDING
        for delivery in dropped:
            delivery._state = _State.WITHDRAWN
            delivery._future.cancel()
            self._count -= 1
        if self._pending:
            self._ready.set()
        self._check_idle()
        return len(dropped)

    def close(self, error: BusError) -> int:
        """Fail everything still queued with `error`; refuse new messages. Returns how many failed."""
        self._closed = error
        failed = 0
        for delivery in (*self._inflight.values(), *self._pending):
            if delivery._state is _State.WITHDRAWN or delivery._future.done():
                continue
            delivery._state = _State.WITHDRAWN
            if delivery.qos > 0:
                delivery._future.set_exception(error)
                # Nobody may be waiting (publish_queued): mark it retrieved, the caller was told.
                delivery._future.exception()
                failed += 1
            else:
                delivery._future.cancel()
        self._pending.clear()
        self._inflight.clear()
        self._count = 0
        self._check_idle()
        return failed

    async def wait_idle(self) -> None:
        """Until nothing is pending or in flight."""
        await self._idle.wait()

    def _check_idle(self) -> None:
        if self._count == 0:
            self._idle.set()
