"""What a restarted service finds: every unsettled order and open sortie, exactly as it was left;
and the operator's queries over orders."""

from __future__ import annotations

from datetime import timedelta

from store_helpers import S, Target, accept_orders, accepted, add_vehicle

from fleetctl.errors import OrderRejected
from fleetctl.store import KEEP, Rejection, Store

PLAN = {"mission_total": 9, "drop_seq": 4, "handoff_seq": 6}


async def _a_busy_day(store: Store) -> None:
    await accept_orders(store, "waiting", "delivered", "cancelled", "cancelled-on-board", "returned", "failed-back")
    await store.receive_orders([Rejection.of(OrderRejected("out_of_range", "far"), accepted("rejected").order)])
    await add_vehicle(store, "drone-1", 1)
    await add_vehicle(store, "drone-2", 2)
    for order_id, path in {
        "delivered": [S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.DELIVERING, S.DELIVERED],
        "cancelled": [S.CANCELLED],
        "cancelled-on-board": [S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.CANCELLED],
        "returned": [S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.FAILED, S.RETURNING, S.RETURNED],
        "failed-back": [S.FAILED],
    }.items():
        for state in path:
            await store.transition(order_id, state, vehicle_id="drone-2" if state == S.ASSIGNED else KEEP)
    await accept_orders(store, "flying")
    await store.create_sortie("S-1", "flying", "drone-1", PLAN)
    await store.update_sortie("S-1", "uploading", mission_items=9)
    await store.transition("flying", S.LOADING)
    await store.transition("flying", S.IN_TRANSIT)


async def test_a_restart_finds_every_unsettled_order_and_open_sortie(target: Target) -> None:
    async with target.open() as store:
        await _a_busy_day(store)
        before = {o.order_id: o for o in await store.list_orders()}
        log = await store.events_after(0, limit=1000)
    async with target.open() as store:
        unsettled = await store.unsettled_orders()
        # oldest first (orders of one batch share a time: then by id)
        assert [o.order_id for o in unsettled] == ["cancelled-on-board", "waiting", "flying"]
        assert all(o == before[o.order_id] for o in unsettled)
        assert all(not o.settled for o in unsettled)
        assert all(o.settled for o in before.values() if o not in unsettled)
        (sortie,) = await store.open_sorties()
        assert (sortie.sortie_id, sortie.state, sortie.mission_items, sortie.plan) == ("S-1", "uploading", 9, PLAN)
        assert (await store.get_order("flying")).parcel_on_board
        assert await store.events_after(0, limit=1000) == log
        assert {o.order_id: o for o in await store.list_orders()} == before


async def test_the_operator_queries_orders_by_state_vehicle_and_change_time(store: Store) -> None:
    await _a_busy_day(store)
    counts = await store.count_by_state()
    assert {s: n for s, n in counts.items() if n} == {
        S.ACCEPTED: 1, S.REJECTED: 1, S.DELIVERED: 1, S.CANCELLED: 2, S.RETURNED: 1, S.FAILED: 1, S.IN_TRANSIT: 1}
    assert [o.order_id for o in await store.list_orders(S.CANCELLED)] == ["cancelled", "cancelled-on-board"]
    assert [o.order_id for o in await store.list_orders({S.DELIVERED, S.RETURNED})] == ["delivered", "returned"]
    assert [o.order_id for o in await store.list_orders(vehicle_id="drone-2")] == [
        "cancelled-on-board", "delivered", "returned"]
    assert [o.order_id for o in await store.list_orders(vehicle_id="drone-1", state=S.IN_TRANSIT)] == ["flying"]
    flying = await store.get_order("flying")
    # since: what changed at or after a time, in the order it changed
    recent = await store.list_orders(since=flying.updated_at - timedelta(microseconds=1))
    assert [o.order_id for o in recent] == ["flying"]
    everything = await store.list_orders(since=flying.created_at - timedelta(days=1))
    assert [o.updated_at for o in everything] == sorted(o.updated_at for o in everything)
    assert len(await store.list_orders(limit=3)) == 3
