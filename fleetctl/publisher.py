"""The event publisher: every stored event goes out on fleet/<site>/events, and every order it
touches gets its current status (retained) — from the store's event log, the outbox of this service.

The cursor (the last event published) is stored, so after a broker outage or a crash the publisher
resumes where it was and publishes what changed meanwhile; a message may go out twice after a
crash (at-least-once), never not at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fleetctl.bus import Bus, Delivery, EventMessage
from fleetctl.bus.payloads import EntityKind
from fleetctl.errors import BusError
from fleetctl.orders.lifecycle import OrderState
from fleetctl.status import order_status
from fleetctl.store import EventRecord, Store

log = logging.getLogger(__name__)

CURSOR = "mqtt"
NO_ID = "-"  # the entity id of an event about a message that had none (a malformed order)
BATCH = 500
IDLE_POLL_S = 0.5  # a missed wake-up costs at most this (wall seconds)
_RETRY_S = 1.0


class EventPublisher:
    def __init__(self, bus: Bus, store: Store) -> None:
        self._bus = bus
        self._store = store
        self._wake = asyncio.Event()
        self.published_events = 0
        self.cursor = 0

    def wake(self) -> None:
        """Something was stored: publish soon."""
        self._wake.set()

    async def run(self) -> None:
        self.cursor = await self._store.outbox_cursor(CURSOR)
        while True:
            events = await self._store.events_after(self.cursor, BATCH)
            if not events:
                self._wake.clear()
                try:
                    async with asyncio.timeout(IDLE_POLL_S):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            try:
                await self._publish(events)
            except BusError as e:
                log.info("events not published yet (%s); retrying from seq %d", e, self.cursor + 1)
                await self._bus.wait_connected()
                await asyncio.sleep(_RETRY_S)
                continue
            self.cursor = events[-1].seq
            await self._store.advance_outbox(CURSOR, self.cursor)
            self.published_events += len(events)

    async def _delivery_proof(self, order_id: str) -> Mapping[str, Any] | None:
        for event in reversed(await self._store.order_events(order_id)):
            if event.kind == "order.delivered" and isinstance(event.data.get("proof"), Mapping):
                return dict(event.data["proof"])
        return None

    async def _publish(self, events: Sequence[EventRecord]) -> None:
        topics = self._bus.topics
        deliveries: list[Delivery] = []
        proofs: dict[str, Mapping[str, Any]] = {}
        for event in events:
            deliveries.append(self._bus.publish_queued(topics.events, EventMessage(
                seq=event.seq, at=event.at, entity=EntityKind(event.entity), entity_id=event.entity_id or NO_ID, kind=event.kind,
                data=dict(event.data))))
            if event.entity == "order" and isinstance(event.data.get("proof"), Mapping):
                proofs[event.entity_id] = event.data["proof"]
        order_ids = list(dict.fromkeys(e.entity_id for e in events if e.entity == "order" and e.entity_id))
        records = await self._store.get_orders(order_ids)  # one read for the batch, not one per order
        # A status never runs ahead of the events: an order changed again after this batch was read
        # (its row is newer than its last event here) gets its status with the batch that carries
        # that change. Otherwise a subscriber could see "delivered" before the delivery's event.
        last_at: dict[str, datetime] = {}
        for event in events:
            if event.entity == "order" and event.entity_id:
                last_at[event.entity_id] = max(event.at, last_at.get(event.entity_id, event.at))
        records = {k: r for k, r in records.items() if r.updated_at <= last_at[k]}
        for order_id, delivered in records.items():
            if delivered.state == OrderState.DELIVERED and order_id not in proofs:
                # A later event of a delivered order (a duplicate answered, an id conflict logged)
                # publishes its status again: the retained status must keep its proof of delivery.
                proof = await self._delivery_proof(order_id)
                if proof is not None:
                    proofs[order_id] = proof
        for order_id in order_ids:
            record = records.get(order_id)
            if record is None:
                continue  # an event about an id that never had a row (e.g. a conflict's)
            deliveries.append(self._bus.publish_queued(topics.order_status(order_id),
                                                       order_status(record, proof=proofs.get(order_id)),
                                                       retain=True))
        for delivery in deliveries:  # queued in order: waits out a broker outage, then flows
            await delivery.wait()
