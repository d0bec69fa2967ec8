"""Sorties (created with their order's assignment, moved through their phases, resumable) and
vehicles (the fleet as stored: identity, grounding, last state)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from store_helpers import S, accept_orders, add_vehicle

from fleetctl.errors import IllegalTransition, StoreError, UnknownOrder, UnknownSortie, UnknownVehicleId
from fleetctl.store import SORTIE_FINISHED, Store

PLAN = {"sortie_id": "S-1", "order_id": "A-1", "vehicle_id": "drone-1", "kind": "drone", "mission_total": 9,
        "drop_seq": 4, "handoff_seq": 6, "out_wgs84": [[60.17, 24.94], [60.18, 24.95]]}
ETA = datetime(2026, 3, 1, 9, 40, tzinfo=UTC)


async def test_a_sortie_assigns_its_order_in_the_same_transaction(store: Store) -> None:
    await accept_orders(store, "A-1")
    await add_vehicle(store)
    sortie, order = await store.create_sortie("S-1", "A-1", "drone-1", PLAN, eta=ETA)
    assert (sortie.state, sortie.plan, sortie.mission_items, sortie.uploaded_at) == ("planned", PLAN, None, None)
    assert (order.state, order.vehicle_id, order.sortie_id, order.eta, order.attempts) == (
        S.ASSIGNED, "drone-1", "S-1", ETA, 1)
    assert await store.get_sortie("S-1") == sortie
    assert await store.get_order("A-1") == order
    tail = await store.events_after(2)
    assert [(e.entity, e.entity_id, e.kind) for e in tail] == [
        ("sortie", "S-1", "sortie.planned"), ("order", "A-1", "order.assigned")]
    assert tail[0].seq < tail[1].seq
    assert tail[0].at == tail[1].at


@pytest.mark.parametrize("problem", ["unknown vehicle", "order not accepted", "unknown order", "sortie id taken"])
async def test_a_sortie_that_cannot_be_created_leaves_no_trace(store: Store, problem: str) -> None:
    await accept_orders(store, "A-1", "A-2")
    await add_vehicle(store)
    await store.create_sortie("S-0", "A-2", "drone-1", PLAN)
    vehicle, order_id, sortie_id, error = {
        "unknown vehicle": ("drone-9", "A-1", "S-1", UnknownVehicleId),
        "order not accepted": ("drone-1", "A-2", "S-1", IllegalTransition),
        "unknown order": ("drone-1", "A-9", "S-1", UnknownOrder),
        "sortie id taken": ("drone-1", "A-1", "S-0", StoreError),
    }[problem]
    before = await store.events_after(0)
    with pytest.raises(error):
        await store.create_sortie(sortie_id, order_id, vehicle, PLAN)
    assert await store.events_after(0) == before
    assert (await store.get_order("A-1")).state == S.ACCEPTED
    assert [s.sortie_id for s in await store.open_sorties()] == ["S-0"]


async def test_a_sortie_moves_through_its_phases_until_it_finishes(store: Store) -> None:
    await accept_orders(store, "A-1")
    await add_vehicle(store)
    await store.create_sortie("S-1", "A-1", "drone-1", PLAN)
    uploaded = datetime(2026, 3, 1, 9, 1, tzinfo=UTC)
    sortie = await store.update_sortie("S-1", "uploading", mission_items=9, expect="planned")
    sortie = await store.update_sortie("S-1", "starting", uploaded_at=uploaded)
    assert (sortie.state, sortie.mission_items, sortie.uploaded_at) == ("starting", 9, uploaded)
    assert [s.sortie_id for s in await store.open_sorties()] == ["S-1"]
    with pytest.raises(IllegalTransition):
        await store.update_sortie("S-1", "outbound", expect="uploading")
    await store.update_sortie("S-1", "failed", detail="arming denied", data={"result": "DENIED"})
    assert await store.open_sorties() == []
    with pytest.raises(IllegalTransition):
        await store.update_sortie("S-1", "outbound")
    events = await store.sortie_events("S-1")
    assert [e.kind for e in events] == ["sortie.planned", "sortie.uploading", "sortie.starting", "sortie.failed"]
    assert (events[-1].data["detail"], events[-1].data["result"]) == ("arming denied", "DENIED")
    assert (await store.get_sortie("S-1")).finished
    with pytest.raises(UnknownSortie):
        await store.update_sortie("S-9", "outbound")
    with pytest.raises(UnknownSortie):
        await store.get_sortie("S-9")


def test_the_stores_finished_phases_are_the_runners() -> None:
    from fleetctl.sorties import FINISHED

    assert {p.value for p in FINISHED} == SORTIE_FINISHED


async def test_vehicles_are_upserted_and_keep_their_grounding(store: Store) -> None:
    first = await store.upsert_vehicle("drone-1", sysid=1, kind="drone", model="quad-x", depot="depot-a",
                                       last_state={"battery_percent": 96.0})
    await store.upsert_vehicle("robot-1", sysid=2, kind="robot", model="rover-s")
    grounded = await store.set_grounded("drone-1", True, reason="propeller check")
    assert grounded.grounded
    again = await store.upsert_vehicle("drone-1", sysid=1, kind="drone", model="quad-x", depot="depot-b")
    assert (again.grounded, again.depot, again.last_state, again.created_at) == (
        True, "depot-b", {"battery_percent": 96.0}, first.created_at)
    await store.record_vehicle_state("robot-1", {"battery_percent": 50.0, "armed": False})
    assert [(v.vehicle_id, v.sysid, v.kind, v.grounded, v.last_state) for v in await store.list_vehicles()] == [
        ("drone-1", 1, "drone", True, {"battery_percent": 96.0}),
        ("robot-1", 2, "robot", False, {"battery_percent": 50.0, "armed": False})]


async def test_grounding_is_logged_when_it_changes(store: Store) -> None:
    await add_vehicle(store)
    await store.set_grounded("drone-1", True, reason="operator")
    await store.set_grounded("drone-1", True, reason="operator again")  # already grounded: nothing to log
    cleared = await store.set_grounded("drone-1", False)
    assert not cleared.grounded
    log = await store.events_after(0)
    assert [(e.entity, e.entity_id, e.kind, e.data["reason"]) for e in log] == [
        ("vehicle", "drone-1", "vehicle.grounded", "operator"), ("vehicle", "drone-1", "vehicle.ungrounded", "")]


async def test_unknown_vehicles_and_taken_system_ids_are_refused(store: Store) -> None:
    await add_vehicle(store, "drone-1", sysid=1)
    with pytest.raises(UnknownVehicleId):
        await store.set_grounded("drone-9", True)
    with pytest.raises(UnknownVehicleId):
        await store.record_vehicle_state("drone-9", {})
    with pytest.raises(UnknownVehicleId):
        await store.get_vehicle("drone-9")
    with pytest.raises(StoreError):
        await add_vehicle(store, "drone-2", sysid=1)
    assert [v.vehicle_id for v in await store.list_vehicles()] == ["drone-1"]
