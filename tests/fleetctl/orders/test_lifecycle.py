"""The order state machine: legal paths, illegal steps raise, every order can be settled."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetctl.errors import IllegalTransition
from fleetctl.orders.lifecycle import (
    FINAL,
    TRANSITIONS,
    OrderState,
    check_transition,
    parcel_on_board_after,
    settled,
)

S = OrderState


def test_the_happy_path_is_legal() -> None:
    path = [S.RECEIVED, S.ACCEPTED, S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.DELIVERING, S.DELIVERED]
    for a, b in itertools.pairwise(path):
        check_transition("o", a, b)


@pytest.mark.parametrize(("a", "b"), [(S.DELIVERED, S.CANCELLED), (S.RECEIVED, S.DELIVERED),
                                      (S.REJECTED, S.ACCEPTED), (S.IN_TRANSIT, S.ACCEPTED)])
def test_illegal_steps_raise(a: OrderState, b: OrderState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition("o", a, b)


def test_cancel_is_possible_before_delivery_and_brings_an_onboard_parcel_back() -> None:
    for state in (S.ACCEPTED, S.ASSIGNED, S.LOADING, S.IN_TRANSIT):
        check_transition("o", state, S.CANCELLED)
    on_board = parcel_on_board_after(True, S.CANCELLED)
    assert on_board
    assert not settled(S.CANCELLED, on_board)
    check_transition("o", S.CANCELLED, S.RETURNING)
    assert settled(S.RETURNED, parcel_on_board_after(True, S.RETURNED))


@given(st.lists(st.sampled_from(list(OrderState)), max_size=30))
def test_from_any_reachable_state_a_settled_state_is_reachable(steps: list[OrderState]) -> None:
    state, on_board = S.RECEIVED, False
    for step in steps:
        if step in TRANSITIONS[state]:
            state, on_board = step, parcel_on_board_after(on_board, step)
    # breadth-first: some settled state is reachable from here
    frontier, seen = [(state, on_board)], set()
    while frontier:
        s, b = frontier.pop()
        if settled(s, b):
            return
        seen.add((s, b))
        frontier += [(n, parcel_on_board_after(b, n)) for n in TRANSITIONS[s] if (n, parcel_on_board_after(b, n)) not in seen]
    pytest.fail(f"stuck in {state} (parcel on board: {on_board})")


def test_final_states_have_only_recovery_exits() -> None:
    assert not TRANSITIONS[S.DELIVERED]
    assert not TRANSITIONS[S.REJECTED]
    for state in FINAL:
        assert TRANSITIONS[state] <= {S.RETURNING, S.ACCEPTED}
