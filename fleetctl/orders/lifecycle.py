"""The order lifecycle as an explicit state machine.

    received ─┬─> accepted ──> assigned ──> loading ──> in_transit ──> delivering ──> delivered
              └─> rejected      │  ^  │        │  │          │  │            │
                                │  └──┴────────┘  │          │  │            └──> failed
                                │ (given back:     │          │  └──> failed ──> returning ──> returned
                                │  vehicle lost,   │          └──> cancelled ──> returning       │
                                │  refused to arm) │                                              │
                                └──> cancelled / failed  (before the parcel is on board)         │
                                                         failed / returned ──> accepted (retried) ┘

A parcel is on board from `in_transit` until `delivered` or `returned`; an order that fails or is
cancelled with the parcel on board goes on to `returning` and `returned` (reverse logistics).
`settled` is the end of an order's story: a final outcome with no parcel still out there.
"""

from __future__ import annotations

import enum

from fleetctl.errors import IllegalTransition


class OrderState(enum.StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ASSIGNED = "assigned"
    LOADING = "loading"
    IN_TRANSIT = "in_transit"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"


S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.RECEIVED: frozenset({S.ACCEPTED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.CANCELLED, S.FAILED}),
    S.ASSIGNED: frozenset({S.LOADING, S.ACCEPTED, S.CANCELLED, S.FAILED}),
    S.LOADING: frozenset({S.IN_TRANSIT, S.ACCEPTED, S.CANCELLED, S.FAILED}),
    S.IN_TRANSIT: frozenset({S.DELIVERING, S.FAILED, S.CANCELLED}),
    S.DELIVERING: frozenset({S.DELIVERED, S.FAILED}),
    S.FAILED: frozenset({S.RETURNING, S.ACCEPTED}),
    S.CANCELLED: frozenset({S.RETURNING}),
    S.RETURNING: frozenset({S.RETURNED}),
    S.RETURNED: frozenset({S.ACCEPTED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
}
#: Outcomes: nothing more happens unless someone acts (a retry, or a parcel coming back).
FINAL = frozenset({S.DELIVERED, S.REJECTED, S.FAILED, S.RETURNED, S.CANCELLED})
#: States in which the parcel is on a vehicle.
ON_BOARD = frozenset({S.IN_TRANSIT, S.DELIVERING, S.RETURNING})
#: States a vehicle is working on: the order belongs to a sortie.
WITH_VEHICLE = frozenset({S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.DELIVERING, S.RETURNING})


def check_transition(order_id: str, current: OrderState, new: OrderState) -> None:
    """Raise IllegalTransition unless the lifecycle allows `current -> new`."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"order {order_id}", current.value, new.value)


def settled(state: OrderState, parcel_on_board: bool) -> bool:
    """The end of an order's story: a final outcome, and no parcel of it still on a vehicle."""
    return state in FINAL and not parcel_on_board


def parcel_on_board_after(previous_on_board: bool, new: OrderState) -> bool:
    """Whether the parcel is on a vehicle once the order is in `new`, given where it was before."""
    if new in ON_BOARD:
        return True
    if new in (S.DELIVERED, S.RETURNED, S.ACCEPTED, S.LOADING, S.ASSIGNED):
        return False
    return previous_on_board  # failed / cancelled: still on board if it was
