"""The receiving side: bounded mailboxes, acknowledgement in arrival order, the messages handed out."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Literal, Self, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """The mailbox was closed (its Bus is shutting down)."""


class Mailbox(Generic[T]):
    """A bounded FIFO between the connection's receiver (one producer) and the service (consumers).

    `put` waits while it is full: the receiver then stops reading the socket's messages, and for QoS 1
    the broker stops sending once its in-flight window of unacknowledged messages is used up. Closing
    drops what is left; for intake that is safe (nothing in here was acknowledged, so the broker
    delivers it again)."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    async def put(self, item: T) -> None:
        while len(self._items) >= self._maxsize and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        if self._closed:
            raise MailboxClosed
        self._items.append(item)
        self._readable.set()

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise MailboxClosed
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._writable.set()
        return item

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._readable.set()
        self._writable.set()


class _Unacked:
    __slots__ = ("mid", "qos", "settled")

    def __init__(self, mid: int, qos: int) -> None:
        self.mid = mid
        self.qos = qos
        self.settled = False


class AckTracker:
    """The acknowledgements of one connection.

    MQTT 3.1.1 requires PUBACKs in the order the PUBLISHes arrived [MQTT-4.6.0-2]; the service, though,
    may store orders concurrently and finish them in any order. So a settled message waits here until
    every message that arrived before it is settled too, and they then go out together. Once the
    connection is gone its tracker is closed and settling does nothing: the broker will deliver what
    we did not acknowledge again (persistent session), under new packet ids."""

    def __init__(self, send: Callable[[int, int], bool]) -> None:
        self._send = send
        self._waiting: deque[_Unacked] = deque()
        self.closed = False
        self.sent = 0

    def arrived(self, mid: int, qos: int) -> _Unacked | None:
        """Note a received message; None for QoS 0 (nothing to acknowledge)."""
        if qos == 0 or self.closed:
            return None
        entry = _Unacked(mid, qos)
        self._waiting.append(entry)
        return entry

    def settle(self, entry: _Unacked) -> bool:
        """Mark `entry` processed; send every PUBACK that is now in order. False if the connection
        that delivered it is gone."""
        if self.closed:
            return False
        entry.settled = True
        while self._waiting and self._waiting[0].settled:
            head = self._waiting.popleft()
            if not self._send(head.mid, head.qos):
                self.close()
                return False
            self.sent += 1
        return True

    @property
    def unsettled(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        self.closed = True
        self._waiting.clear()


IntakeKind = Literal["order", "handoff"]


class IntakeMessage:
    """A message on orders/new (kind "order") or orders/<id>/handoff (kind "handoff", `order_id` from
    the topic), not yet acknowledged to the broker.

    Call `ack()` once its outcome is committed to the store (accepted, rejected or a duplicate).
    Until then a crash, or a lost connection, means the broker delivers it again; so the service may
    see a message twice (at-least-once), and answers the second copy from the store by order id."""

    __slots__ = ("_acked", "_entry", "_on_ack", "_tracker", "kind", "order_id", "payload", "qos", "retain",
                 "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, retain: bool, kind: IntakeKind,
                 order_id: str | None, tracker: AckTracker, entry: _Unacked | None,
                 on_ack: Callable[[], None]) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.kind: IntakeKind = kind
        self.order_id = order_id
        self._tracker = tracker
        self._entry = entry
        self._on_ack = on_ack
        self._acked = False

    @property
    def acked(self) -> bool:
        return self._acked

    def ack(self) -> bool:
        """Acknowledge the message (idempotent). True if its PUBACK is sent, or queued behind earlier
        messages; False if the connection that delivered it is gone (the broker will redeliver it)."""
        if self._acked:
            return not self._tracker.closed
        self._acked = True
        self._on_ack()
        if self._entry is None:
            return True  # QoS 0: the broker expects nothing
        return self._tracker.settle(self._entry)

    def __repr__(self) -> str:
        return f"IntakeMessage({self.kind}, topic={self.topic!r}, {len(self.payload)} bytes, acked={self._acked})"


@dataclass(frozen=True, slots=True)
class Received:
    """A message on a `Subscription`'s filter."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Subscription:
    """Messages matching one topic filter, oldest first, from a bounded mailbox; an async iterator that
    ends when the Bus closes or the subscription is closed. Acknowledged as they arrive (use
    `Bus.intake` for messages that must not be acknowledged before they are stored)."""

    def __init__(self, topic_filter: str, qos: int, maxsize: int, on_close: Callable[[Subscription], None]) -> None:
        self.filter = topic_filter
        self.qos = qos
        self._mailbox: Mailbox[Received] = Mailbox(maxsize)
        self._on_close = on_close

    async def deliver(self, message: Received) -> None:
        if not self._mailbox.closed:
            with contextlib.suppress(MailboxClosed):  # closed while we waited for room: nobody listens
                await self._mailbox.put(message)

    async def get(self) -> Received:
        """The next message; MailboxClosed once the subscription or its Bus is closed."""
        return await self._mailbox.get()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Received:
        try:
            return await self._mailbox.get()
        except MailboxClosed:
            raise StopAsyncIteration from None

    def __len__(self) -> int:
        return len(self._mailbox)

    @property
    def closed(self) -> bool:
        return self._mailbox.closed

    def close(self) -> None:
        if not self._mailbox.closed:
            self._mailbox.close()
            self._on_close(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()
