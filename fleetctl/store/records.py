"""What the store hands out and takes in: frozen records of rows, and the items of an intake batch.

Records are snapshots: a record read a moment ago may already be stale, so anything that decides on
a state passes it back as `expect=` and lets the store check it in the same transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from fleetctl.errors import OrderRejected
from fleetctl.orders.lifecycle import OrderState, settled
from fleetctl.orders.model import Order
from fleetctl.orders.validate import Acceptance, RejectReason

EntityKind = Literal["order", "sortie", "vehicle", "zone", "service"]

#: Sortie states after which nothing more happens to a sortie (`fleetctl.sorties.FINISHED`; the
#: store keeps its own copy so it does not import the runner, and a test checks they agree).
SORTIE_FINISHED: Final = frozenset({"done", "failed"})


class Keep(enum.Enum):
    """`KEEP`: leave this column as it is (None would clear it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    state: OrderState
    site: str | None
    fingerprint: str
    payload: Mapping[str, Any] | None  # the Order as JSON; the raw object for a malformed one
    reason: str | None  # why the order is in its current state (machine-readable)
    detail: str | None
    kinds: tuple[str, ...]  # vehicle kinds that can serve it
    depot: str | None
    dropoff_xy_m: tuple[float, float] | None  # in the site's local frame
    priority: str | None
    window_earliest: datetime | None  # UTC
    window_latest: datetime | None
    vehicle_id: str | None
    sortie_id: str | None
    eta: datetime | None
    parcel_on_board: bool
    attempts: int  # sorties assigned so far
    created_at: datetime
    updated_at: datetime
    pinned_vehicle: str | None = None  # an operator's pin: dispatch gives it to no other vehicle

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it: a final outcome and no parcel still out there."""
        return settled(self.state, self.parcel_on_board)

    def order(self) -> Order | None:
        """The order as received (None for a malformed one, which never was an Order)."""
        if self.payload is None or self.reason == RejectReason.MALFORMED:
            return None
        return Order.model_validate(self.payload)


@dataclass(frozen=True)
class SortieRecord:
    sortie_id: str
    order_id: str
    vehicle_id: str
    state: str  # a fleetctl.sorties.SortiePhase value
    detail: str | None
    plan: Mapping[str, Any]  # the SortiePlan as JSON
    mission_items: int | None  # how many mission items were uploaded
    uploaded_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.state in SORTIE_FINISHED


@dataclass(frozen=True)
class VehicleRecord:
    vehicle_id: str
    sysid: int  # MAVLink system id
    kind: str
    model: str
    depot: str | None
    grounded: bool
    last_state: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EventRecord:
    seq: int  # position in the log, increasing in commit order
    at: datetime  # UTC
    entity: EntityKind
    entity_id: str
    kind: str  # e.g. "order.accepted", "sortie.outbound", "vehicle.grounded"
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Rejection:
    """An order intake refused. `order` when it parsed (then its id is the key), else just the
    `order_id` if one could be read from the raw `payload`, else nothing (no row can be kept)."""

    reason: str
    detail: str
    order: Order | None = None
    order_id: str | None = None
    payload: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, error: OrderRejected, order: Order | None = None, *, order_id: str | None = None,
           payload: Mapping[str, Any] | None = None) -> Rejection:
        return cls(error.reason, error.detail, order, order_id, payload)

    @property
    def key(self) -> str | None:
        return self.order.order_id if self.order is not None else self.order_id


#: One item of an intake batch: a validated order, or a refused one.
ReceiveItem = Acceptance | Rejection


@dataclass(frozen=True)
class ReceiveResult:
    """What became of one intake item. `record` is the order as stored (for a duplicate or a
    conflict: the order stored earlier under that id; None when the item had no id at all)."""

    record: OrderRecord | None
    duplicate: bool = False  # the same order again: nothing changed, answer with its status
    conflict: bool = False  # the same id with other content: refused (id_conflict), row unchanged
