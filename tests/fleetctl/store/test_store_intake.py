"""Intake: a batch is one transaction; the order id is the idempotency key (the same order again is a
duplicate, the same id with other content a conflict), also within one batch and across batches."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from store_helpers import S, Target, accepted, make_order

from fleetctl.errors import OrderRejected
from fleetctl.orders import RejectReason
from fleetctl.store import Rejection, Store, order_queries


async def test_new_orders_are_stored_accepted_or_rejected_with_their_events(store: Store) -> None:
    bad_window = make_order("R-1", window={"earliest": "2026-03-01T09:00:00Z", "latest": "2026-03-01T09:01:00Z"})
    results = await store.receive_orders([
        accepted("A-1"),
        Rejection.of(OrderRejected(RejectReason.BAD_TIME_WINDOW, "too short"), bad_window),
        Rejection(RejectReason.MALFORMED, "weight_kg: missing", order_id="M-1", payload={"order_id": "M-1"}),
    ])
    a, r, m = (res.record for res in results)
    assert a is not None
    assert r is not None
    assert m is not None
    assert not any(res.duplicate or res.conflict for res in results)
    assert (a.state, a.kinds, a.depot, a.dropoff_xy_m, a.priority, a.attempts) == (
        S.ACCEPTED, ("drone", "robot"), "depot-a", (120.5, -40.25), "express", 0)
    assert a.order() == make_order("A-1")
    assert a.window_earliest is not None
    assert a.window_earliest.utcoffset() is not None
    assert (r.state, r.reason, r.detail, r.site) == (S.REJECTED, "bad_time_window", "too short", "testsite")
    assert (m.state, m.reason, m.site, m.payload, m.order()) == (S.REJECTED, "malformed", None, {"order_id": "M-1"}, None)
    assert await store.get_order("A-1") == a
    for order_id, last in (("A-1", "order.accepted"), ("R-1", "order.rejected"), ("M-1", "order.rejected")):
        assert [e.kind for e in await store.order_events(order_id)] == ["order.received", last]


async def test_the_same_order_again_is_a_duplicate_answered_with_its_current_state(store: Store) -> None:
    await store.receive_orders([accepted("A-1")])
    await store.transition("A-1", S.CANCELLED)
    # e.g. the producer resends after its window closed: it is still the same order
    (again,) = await store.receive_orders([Rejection.of(OrderRejected("bad_time_window", "closed"), make_order("A-1"))])
    assert again.duplicate
    assert not again.conflict
    assert again.record is not None
    assert again.record.state == S.CANCELLED
    assert len(await store.order_events("A-1")) == 3  # received, accepted, cancelled: no new event


async def test_the_same_id_with_other_content_is_a_conflict_and_changes_nothing(store: Store) -> None:
    (first,) = await store.receive_orders([accepted("A-1")])
    (other,) = await store.receive_orders([accepted("A-1", weight_kg=2.5)])
    assert other.conflict
    assert not other.duplicate
    assert other.record == first.record == await store.get_order("A-1")
    events = await store.order_events("A-1")
    assert [e.kind for e in events] == ["order.received", "order.accepted", "order.id_conflict"]
    assert events[-1].data["reason"] == "id_conflict"


async def test_repeats_within_one_batch_are_duplicates_or_conflicts_of_the_first(store: Store) -> None:
    results = await store.receive_orders([
        accepted("A-1"), accepted("A-2"), accepted("A-1"), accepted("A-1", weight_kg=3.0),
        Rejection.of(OrderRejected("out_of_range", "far"), make_order("A-2")),
    ])
    assert [(r.duplicate, r.conflict) for r in results] == [
        (False, False), (False, False), (True, False), (False, True), (True, False)]
    assert all(r.record is not None and r.record.state == S.ACCEPTED for r in results)
    assert results[2].record == results[0].record
    counts = await store.count_by_state()
    assert counts[S.ACCEPTED] == 2
    assert sum(counts.values()) == 2
    assert [e.kind for e in await store.order_events("A-1")] == ["order.received", "order.accepted", "order.id_conflict"]


async def test_an_order_without_an_id_leaves_an_event_but_no_row(store: Store) -> None:
    (result,) = await store.receive_orders([Rejection(RejectReason.MALFORMED, "not JSON", payload={"x": 1})])
    assert result.record is None
    assert not result.duplicate
    assert not result.conflict
    (event,) = await store.events_after(0)
    assert (event.kind, event.entity_id, event.data["payload"]) == ("order.rejected", "", {"x": 1})
    assert sum((await store.count_by_state()).values()) == 0


async def test_a_large_batch_is_one_transaction(store: Store) -> None:
    ids = [f"B-{i:04d}" for i in range(1200)]  # more ids than one IN (...) chunk
    results = await store.receive_orders([accepted(i) for i in ids])
    assert [r.record.order_id for r in results if r.record] == ids
    again = await store.receive_orders([accepted(i) for i in ids])
    assert all(r.duplicate for r in again)
    log = await store.events_after(0, limit=5000)
    assert len(log) == 2 * len(ids)
    assert len({e.at for e in log}) == 1  # one transaction, one time


async def test_two_services_receiving_the_same_new_order_store_it_once(target: Target) -> None:
    async with target.open() as one, target.open() as two:
        ids = [f"C-{i}" for i in range(20)]
        first, second = await asyncio.gather(one.receive_orders([accepted(i) for i in ids]),
                                             two.receive_orders([accepted(i) for i in reversed(ids)]))
        for a, b in zip(first, reversed(second), strict=True):
            assert sorted([a.duplicate, b.duplicate]) == [False, True]
            assert a.record == b.record
        assert len(await one.events_after(0, limit=1000)) == 2 * len(ids)


async def test_a_batch_that_lost_an_insert_race_is_retried_and_sees_the_winner(
        target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both batches read "A-1 is new" before either inserts (PostgreSQL lets them: they are different
    # transactions); the loser's insert fails on the key, and its retry finds the winner's row.
    real_by_ids = order_queries._by_ids
    both_read = asyncio.Event()
    readers = 0

    async def by_ids_then_wait(conn: Any, ids: Any) -> Any:
        nonlocal readers
        found = await real_by_ids(conn, ids)
        readers += 1
        if readers == 2:
            both_read.set()
        if readers <= 2:  # (SQLite's second writer cannot read before the first commits: do not wait long)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await both_read.wait()
        return found

    monkeypatch.setattr(order_queries, "_by_ids", by_ids_then_wait)
    async with target.open() as one, target.open() as two:
        results = await asyncio.gather(one.receive_orders([accepted("A-1")]), two.receive_orders([accepted("A-1")]),
                                       return_exceptions=True)
    assert sorted(r[0].duplicate for r in results if isinstance(r, list)) == [False, True], results
