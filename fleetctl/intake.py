"""Order intake: from orders/new to the store, and only then the broker's acknowledgement.

A batch of messages (whatever arrived together, up to `batch_max`) is parsed and validated, stored
in one transaction, and acknowledged to the broker in arrival order. Answers: a new order's status
goes out through the event publisher once it is committed (`publisher`); a duplicate is answered
here with its stored status; a message that has no usable order id, or reuses an id with other
content, is answered on orders/rejected. Nothing in a payload can take intake down: every failure
of a message is a rejection with a reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from fleetctl.bus import Bus, IntakeMessage, RejectedMessage, check_level
from fleetctl.bus.payloads import HandoffMessage, OrderStatus
from fleetctl.clock import Clock
from fleetctl.errors import BusError, OrderRejected
from fleetctl.orders.model import ORDER_ID_PATTERN
from fleetctl.orders.validate import MAX_PAYLOAD_BYTES, OrderValidator, RejectReason, parse_order
from fleetctl.status import order_status
from fleetctl.store import ReceiveItem, ReceiveResult, Rejection, Store

log = logging.getLogger(__name__)
_ORDER_ID = re.compile(ORDER_ID_PATTERN)


class Intake:
    def __init__(self, bus: Bus, store: Store, validator: OrderValidator, clock: Clock, *,
                 on_accepted: Callable[[], None], batch_max: int = 200,
                 on_handoff: Callable[[str, str], bool] | None = None) -> None:
        self._on_handoff = on_handoff
        self._bus = bus
        self._store = store
        self._validator = validator
        self._clock = clock
        self._on_accepted = on_accepted
        self._batch_max = batch_max
        self.received = 0
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0

    async def run(self) -> None:
        stream = self._bus.intake()
        while True:
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                return
            batch = [first, *await self._more(stream)]
            await self.handle(batch)

    async def _more(self, stream: AsyncIterator[IntakeMessage]) -> list[IntakeMessage]:
        """What else has arrived already (without waiting for more)."""
        more: list[IntakeMessage] = []
        while len(more) + 1 < self._batch_max:
            try:
                async with asyncio.timeout(0):
                    more.append(await anext(stream))
            except (TimeoutError, StopAsyncIteration):
                break
        return more

    async def handle(self, batch: list[IntakeMessage]) -> None:
        orders = [m for m in batch if m.kind == "order"]
        items = [self._examine(m.payload) for m in orders]
        results = await self._store.receive_orders(items) if items else []
        for message, item, result in zip(orders, items, results, strict=True):
            self._answer(message, item, result)
        for message in batch:
            if message.kind != "order":
                await self._handoff(message)
            message.ack()
        self.received += len(orders)
        if any(r.record is not None and not r.duplicate and not r.conflict and r.record.reason is None
               for r in results):
            self._on_accepted()

    async def _handoff(self, message: IntakeMessage) -> None:
        """A recipient's PIN: to the robot waiting at the door, if one is. Logged either way (never
        the PIN itself)."""
        order_id = message.order_id or ""
        try:
            pin = HandoffMessage.model_validate_json(message.payload).pin
        except ValueError:
            await self._store.append_event("order", order_id, "order.handoff_invalid",
                                           {"detail": "not a hand-off message: {\"pin\": \"4 to 8 digits\"}"})
            return
        taken = self._on_handoff(order_id, pin) if self._on_handoff is not None else False
        await self._store.append_event("order", order_id, "order.handoff_entered", {
            "taken": taken, "detail": "to the robot at the door" if taken else "no robot is waiting for it"})

    def _examine(self, raw: bytes) -> ReceiveItem:
        order = None
        try:
            order = parse_order(raw)
            return self._validator.validate(order, self._clock.now())
        except OrderRejected as e:
            return Rejection.of(e, order, order_id=None if order else _order_id_of(raw),
                                payload=None if order else _object_of(raw))

    def _answer(self, message: IntakeMessage, item: ReceiveItem, result: ReceiveResult) -> None:
        """Answers that the event publisher does not give (it publishes every stored change)."""
        record = result.record
        now = self._clock.now()
        try:
            if record is None:  # no id to answer on
                assert isinstance(item, Rejection)
                self.rejected += 1
                self._bus.publish_queued(self._bus.topics.orders_rejected,
                                         RejectedMessage.of(message.payload, item.reason, item.detail, now))
            elif result.conflict:
                self.rejected += 1
                self._bus.publish_queued(self._bus.topics.orders_rejected, RejectedMessage.of(
                    message.payload, RejectReason.ID_CONFLICT,
                    f"order id {record.order_id} is taken by an order with other content", now,
                    {"order_id": record.order_id}))
            elif result.duplicate:
                self.duplicates += 1
                self._bus.publish_queued(self._bus.topics.order_status(record.order_id), order_status(record),
                                         retain=True)
            elif record.state == "rejected":
                self.rejected += 1
            else:
                self.accepted += 1
        except BusError as e:  # a full outbox: the producer can ask again; the order itself is safe
            log.warning("could not queue the answer to an order message: %s", e)


def _object_of(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > MAX_PAYLOAD_BYTES:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _order_id_of(raw: bytes) -> str | None:
    """The order id of a message that is not a valid order, if it has a valid one: then its
    rejection is kept under that id and answered on its status topic."""
    data = _object_of(raw)
    order_id = data.get("order_id") if data else None
    if not isinstance(order_id, str) or _ORDER_ID.fullmatch(order_id) is None:
        return None
    return check_level(order_id, "order id")


__all__ = ["Intake", "OrderStatus"]
