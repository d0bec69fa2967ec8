"""Transitions: the lifecycle decides, the row and its event change together or not at all, and
`expect` lets exactly one of two racing writers win."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from store_helpers import DELIVERY, S, Target, accept_orders

from fleetctl.errors import IllegalTransition, StoreError, UnknownOrder
from fleetctl.store import Store, event_log

ETA = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


async def test_a_delivery_writes_one_event_per_step(store: Store) -> None:
    await accept_orders(store, "A-1")
    for state in DELIVERY:
        assignment: dict[str, Any] = {"vehicle_id": "drone-1", "sortie_id": "S-1", "eta": ETA}
        record = await store.transition("A-1", state, **(assignment if state == S.ASSIGNED else {}))
        assert record == await store.get_order("A-1")
    assert (record.state, record.vehicle_id, record.sortie_id, record.eta, record.parcel_on_board, record.attempts) == (
        S.DELIVERED, "drone-1", "S-1", ETA, False, 1)
    assert record.settled
    events = await store.order_events("A-1")
    assert [e.kind for e in events] == ["order.received", "order.accepted"] + [f"order.{s}" for s in DELIVERY]
    assert [e.data["to"] for e in events[1:]] == ["accepted", *DELIVERY]
    assert events[-1].at == record.updated_at


async def test_an_illegal_step_raises_and_changes_nothing(store: Store) -> None:
    await accept_orders(store, "A-1")
    before, log = await store.get_order("A-1"), await store.order_events("A-1")
    for illegal in (S.DELIVERED, S.IN_TRANSIT, S.RECEIVED, S.ACCEPTED, S.RETURNED):
        with pytest.raises(IllegalTransition) as raised:
            await store.transition("A-1", illegal, reason="x", vehicle_id="drone-9")
        assert (raised.value.from_state, raised.value.to_state) == ("accepted", illegal.value)
    assert await store.get_order("A-1") == before
    assert await store.order_events("A-1") == log


async def test_an_unknown_order_cannot_move(store: Store) -> None:
    with pytest.raises(UnknownOrder):
        await store.transition("nope", S.CANCELLED)
    with pytest.raises(UnknownOrder):
        await store.get_order("nope")


async def test_a_failed_event_write_takes_the_state_change_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # The event is written after the row is updated; if it fails, the update must not survive.
    await accept_orders(store, "A-1")
    before = await store.get_order("A-1")
    real_append = event_log.append

    async def append_then_fail(*args: Any) -> Any:
        await real_append(*args)
        raise StoreError("the disk is full")

    monkeypatch.setattr(event_log, "append", append_then_fail)
    with pytest.raises(StoreError, match="disk"):
        await store.transition("A-1", S.CANCELLED)
    monkeypatch.undo()
    assert await store.get_order("A-1") == before
    assert len(await store.order_events("A-1")) == 2
    assert (await store.transition("A-1", S.CANCELLED)).state == S.CANCELLED  # and the store still works


async def test_expect_refuses_an_order_someone_else_moved(store: Store) -> None:
    await accept_orders(store, "A-1")
    await store.transition("A-1", S.CANCELLED, expect=S.ACCEPTED)
    with pytest.raises(IllegalTransition):
        await store.transition("A-1", S.FAILED, expect=S.ACCEPTED)  # it is cancelled now
    with pytest.raises(IllegalTransition):
        await store.transition("A-1", S.RETURNING, expect=S.ASSIGNED)  # legal step, wrong expectation
    assert [e.kind for e in await store.order_events("A-1")][-1] == "order.cancelled"


async def test_of_two_racing_transitions_exactly_one_wins(target: Target) -> None:
    # Two services (two engines, two connection pools) move the same orders at the same time.
    ids = [f"R-{i}" for i in range(15)]
    async with target.open() as one, target.open() as two:
        await accept_orders(one, *ids)
        outcomes = await asyncio.gather(
            *(one.transition(i, S.CANCELLED, expect=S.ACCEPTED, reason="operator") for i in ids),
            *(two.transition(i, S.FAILED, expect=S.ACCEPTED, reason="no_vehicle") for i in ids),
            return_exceptions=True)
        for i, (a, b) in enumerate(zip(outcomes[:len(ids)], outcomes[len(ids):], strict=True)):
            lost = [o for o in (a, b) if isinstance(o, BaseException)]
            assert [type(e) for e in lost] == [IllegalTransition], (a, b)
            won = a if b in lost else b
            stored = await two.get_order(ids[i])
            assert stored == won
            events = await one.order_events(ids[i])
            assert len(events) == 3
            assert events[-1].kind == f"order.{stored.state}"


async def test_the_parcel_is_on_board_from_transit_until_it_is_back(store: Store) -> None:
    await accept_orders(store, "A-1")
    on_board = []
    for state in (S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.FAILED, S.RETURNING, S.RETURNED):
        on_board.append((await store.transition("A-1", state, reason="vehicle_failsafe" if state == S.FAILED else None)
                         ).parcel_on_board)
    assert on_board == [False, False, True, True, True, False]
    failed = [e for e in await store.order_events("A-1") if e.kind == "order.failed"]
    assert failed[0].data["reason"] == "vehicle_failsafe"
    assert failed[0].data["parcel_on_board"] is True


async def test_an_order_given_back_loses_its_vehicle_and_a_retry_counts(store: Store) -> None:
    await accept_orders(store, "A-1")
    await store.transition("A-1", S.ASSIGNED, vehicle_id="drone-1", sortie_id="S-1", eta=ETA)
    back = await store.transition("A-1", S.ACCEPTED, reason="vehicle_refused", detail="arming denied")
    assert (back.vehicle_id, back.sortie_id, back.eta, back.reason, back.detail) == (
        None, None, None, "vehicle_refused", "arming denied")
    again = await store.transition("A-1", S.ASSIGNED, vehicle_id="drone-2", sortie_id="S-2",
                                   eta=ETA + timedelta(minutes=5), data={"note": "second try"})
    assert (again.vehicle_id, again.attempts, again.reason) == ("drone-2", 2, None)
    assert (await store.order_events("A-1"))[-1].data["note"] == "second try"


async def test_times_must_be_aware(store: Store) -> None:
    await accept_orders(store, "A-1")
    with pytest.raises(ValueError, match="naive"):
        await store.transition("A-1", S.ASSIGNED, eta=datetime(2026, 3, 1, 9, 30))
    with pytest.raises(ValueError, match="naive"):
        await store.list_orders(since=datetime(2026, 3, 1))
    # any zone in, UTC out
    record = await store.transition("A-1", S.ASSIGNED, eta=ETA.astimezone(ZoneInfo("Europe/Helsinki")))
    stored = await store.get_order("A-1")
    assert record.eta == stored.eta == ETA
    assert record.eta is not None
    assert stored.eta is not None
    assert record.eta.tzinfo == stored.eta.tzinfo == UTC


async def test_dispatch_etas_and_operator_pins_are_stored_and_logged(store: Store) -> None:
    await accept_orders(store, "E-1", "E-2")
    eta = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
    await store.transition("E-2", S.ASSIGNED, vehicle_id="v", sortie_id="s")
    assert await store.set_etas({"E-1": eta, "E-2": eta}) == 1  # E-2's sortie owns its ETA now
    assert (await store.get_order("E-1")).eta == eta
    assert (await store.get_order("E-2")).eta is None
    pinned = await store.pin_order("E-1", "quad-3")
    assert pinned.pinned_vehicle == "quad-3" == (await store.get_order("E-1")).pinned_vehicle
    assert (await store.pin_order("E-1", None)).pinned_vehicle is None
    with pytest.raises(IllegalTransition):
        await store.pin_order("E-2", "quad-3")
    with pytest.raises(UnknownOrder):
        await store.pin_order("nope", "quad-3")
    kinds = [e.kind for e in await store.order_events("E-1")]
    assert kinds[-3:] == ["order.eta", "order.pinned", "order.unpinned"]
