"""Random walks through the lifecycle, legal and illegal steps mixed, on both engines: the log and
the rows never disagree. For every order, events == 2 (received, accepted) + the steps that were
applied; the last event names the state in the row; the row is what the lifecycle model says."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import S, accept_orders

from fleetctl.errors import IllegalTransition
from fleetctl.orders.lifecycle import TRANSITIONS, OrderState, parcel_on_board_after, settled
from fleetctl.store import Store

ALL_STATES = sorted(OrderState)
ORDERS = 3
# (which order, which target, pick among the legal targets?, expect: none / the right state / a wrong one)
STEP = st.tuples(st.integers(0, ORDERS - 1), st.integers(0, 1_000), st.booleans(),
                 st.sampled_from(["none", "right", "wrong"]))


def _target(state: OrderState, pick: int, legal: bool) -> OrderState:
    options = sorted(TRANSITIONS[state]) if legal and TRANSITIONS[state] else ALL_STATES
    return options[pick % len(options)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=20))
async def test_random_transitions_keep_rows_and_log_in_step(
        store: Store, steps: list[tuple[int, int, bool, str]]) -> None:
    run = uuid.uuid4().hex[:8]  # one store serves every example: fresh ids per example
    ids = [f"P{run}-{i}" for i in range(ORDERS)]
    await accept_orders(store, *ids)
    model = {i: (S.ACCEPTED, False) for i in ids}
    applied = dict.fromkeys(ids, 0)

    for which, pick, legal, expect_mode in steps:
        order_id = ids[which]
        state, on_board = model[order_id]
        target = _target(state, pick, legal)
        expect = {"none": None, "right": state,
                  "wrong": next(s for s in ALL_STATES if s != state)}[expect_mode]
        allowed = target in TRANSITIONS[state] and expect_mode != "wrong"
        try:
            record = await store.transition(order_id, target, expect=expect, reason=f"step-{pick}")
        except IllegalTransition:
            assert not allowed, (state, target, expect_mode)
            continue
        assert allowed, (state, target, expect_mode)
        model[order_id] = (target, parcel_on_board_after(on_board, target))
        applied[order_id] += 1
        assert (record.state, record.parcel_on_board) == model[order_id]

    unsettled = {o.order_id for o in await store.unsettled_orders()}
    for order_id in ids:
        record = await store.get_order(order_id)
        events = await store.order_events(order_id)
        assert (record.state, record.parcel_on_board) == model[order_id]
        assert len(events) == 2 + applied[order_id]
        assert events[-1].kind == f"order.{record.state}"
        assert events[-1].data["to"] == record.state.value
        assert [e.seq for e in events] == sorted({e.seq for e in events})
        assert events[-1].at == record.updated_at
        assert (order_id in unsettled) == (not settled(record.state, record.parcel_on_board))
