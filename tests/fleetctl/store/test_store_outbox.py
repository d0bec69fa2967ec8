"""The event log as the MQTT publisher reads it: in seq order, from its cursor, which survives a
restart and never moves back."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from store_helpers import S, Target, accept_orders

from fleetctl.errors import StoreError
from fleetctl.store import EntityKind, Store, event_log


async def test_a_publisher_pages_through_the_log_from_its_cursor(store: Store) -> None:
    assert await store.outbox_cursor("mqtt") == 0
    await accept_orders(store, "A-1", "A-2")  # 4 events
    zone = await store.append_event("zone", "nfz-3", "zone.activated", {"reason": "police operation"})
    await store.append_event("service", "helsinki", "service.started")
    assert (zone.seq, zone.entity, zone.data) == (5, "zone", {"reason": "police operation"})
    assert await store.last_event_seq() == 6

    published: list[str] = []
    cursor = await store.outbox_cursor("mqtt")
    while batch := await store.events_after(cursor, limit=4):
        published += [e.kind for e in batch]
        assert [e.seq for e in batch] == sorted(e.seq for e in batch)
        cursor = await store.advance_outbox("mqtt", batch[-1].seq)
    assert published == ["order.received", "order.accepted"] * 2 + ["zone.activated", "service.started"]
    assert await store.outbox_cursor("mqtt") == 6

    await store.transition("A-1", S.CANCELLED)
    assert [e.kind for e in await store.events_after(await store.outbox_cursor("mqtt"))] == ["order.cancelled"]


async def test_the_cursor_never_moves_back_and_cursors_are_independent(store: Store) -> None:
    assert await store.advance_outbox("mqtt", 10) == 10
    assert await store.advance_outbox("mqtt", 7) == 10  # a late acknowledgement of an older batch
    assert await store.outbox_cursor("mqtt") == 10
    assert await store.advance_outbox("audit", 3) == 3
    assert (await store.outbox_cursor("mqtt"), await store.outbox_cursor("audit")) == (10, 3)


async def test_the_cursor_and_the_log_survive_a_restart(target: Target) -> None:
    async with target.open() as store:
        await accept_orders(store, "A-1", "A-2")
        await store.advance_outbox("mqtt", 2)
    async with target.open() as store:
        assert await store.outbox_cursor("mqtt") == 2
        assert [e.entity_id for e in await store.events_after(2)] == ["A-2", "A-2"]
        # seqs go on after a restart, never reused
        assert (await store.append_event("service", "s", "service.started")).seq == 5


async def test_an_unknown_entity_kind_is_refused_by_the_database(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.append_event(cast(EntityKind, "planet"), "mars", "planet.found")
    assert await store.events_after(0) == []


async def test_a_publisher_never_sees_a_later_event_before_an_earlier_one(
        target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    # One writer draws its seq and then dawdles before committing; another writer comes along
    # meanwhile. Were seqs handed out without ordering commits (a bare PostgreSQL sequence), a
    # reader could see the second event first, move its cursor past it, and skip the first forever.
    real_append = event_log.append
    first_appended = asyncio.Event()

    async def slow_append(conn: Any, at: Any, new: Any) -> None:
        await real_append(conn, at, new)
        if new and new[0].kind == "order.cancelled":
            first_appended.set()
            await asyncio.sleep(0.3)  # inside the transaction: not committed yet

    monkeypatch.setattr(event_log, "append", slow_append)
    async with target.open() as one, target.open() as two, target.open() as reader:
        await accept_orders(one, "A-1")
        base = await reader.last_event_seq()

        async def second_writer() -> None:
            await first_appended.wait()
            await two.append_event("service", "s", "service.heartbeat")

        polls: list[list[int]] = []

        async def poll() -> None:
            while len(polls) < 2 or len(polls[-1]) < 2:
                polls.append([e.seq for e in await reader.events_after(base)])
                await asyncio.sleep(0.02)

        await asyncio.gather(one.transition("A-1", S.CANCELLED), second_writer(), poll())
    assert polls[-1] == [base + 1, base + 2]
    assert all(seen == polls[-1][:len(seen)] for seen in polls), polls
