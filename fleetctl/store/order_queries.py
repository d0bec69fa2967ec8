"""Orders in SQL: intake of a batch, lifecycle transitions, and the operator's queries.

The functions run inside a transaction the Store opened and return the events their changes imply
instead of writing them, so the Store appends all of a transaction's events last (event_log).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetctl.errors import IllegalTransition, UnknownOrder
from fleetctl.orders.lifecycle import FINAL, OrderState, check_transition, parcel_on_board_after
from fleetctl.orders.model import Order, utc_iso
from fleetctl.orders.validate import Acceptance, RejectReason
from fleetctl.store.event_log import NewEvent
from fleetctl.store.records import KEEP, Keep, OrderRecord, ReceiveItem, ReceiveResult, Rejection
from fleetctl.store.schema import orders

_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's limit on bound parameters
S = OrderState


async def receive(conn: AsyncConnection, items: Sequence[ReceiveItem],
                  now: datetime) -> tuple[list[ReceiveResult], list[NewEvent]]:
    """Store a batch of orders as received; the id is the idempotency key (see Store.receive_orders)."""
    keys = {k for k in (_key(item) for item in items) if k is not None}
    known = await _by_ids(conn, keys)
    results: list[ReceiveResult] = []
    new_rows: list[dict[str, Any]] = []
    new_events: list[NewEvent] = []
    for item in items:
        key, fingerprint = _key(item), _fingerprint(item)
        if key is None and isinstance(item, Rejection):  # malformed beyond reading an id: no row can be kept
            new_events.append(NewEvent("order", "", "order.rejected", _rejected_data(item)))
            results.append(ReceiveResult(None))
            continue
        assert key is not None  # only a Rejection can come without an id
        existing = known.get(key)
        if existing is not None and existing.fingerprint == fingerprint:
            results.append(ReceiveResult(existing, duplicate=True))
        elif existing is not None:
            new_events.append(NewEvent("order", key, "order.id_conflict", {
                "reason": RejectReason.ID_CONFLICT.value, "fingerprint": fingerprint,
                "detail": f"order {key} was received before with other content",
            }))
            results.append(ReceiveResult(existing, conflict=True))
        else:
            record = _new_record(item, key, fingerprint, now)
            known[key] = record  # a later item of this batch with the same id sees it
            new_rows.append(_row(record))
            new_events += _intake_events(item, record)
            results.append(ReceiveResult(record))
    if new_rows:
        # In id order: two concurrent batches then lock their new keys in the same order and one
        # waits for the other, instead of each holding a key the other needs (a deadlock).
        await conn.execute(sa.insert(orders), sorted(new_rows, key=lambda row: str(row["order_id"])))
    return results, new_events


async def transition(conn: AsyncConnection, order_id: str, new: OrderState, now: datetime, *,
                     reason: str | None, detail: str | None, vehicle_id: str | Keep | None,
                     sortie_id: str | Keep | None, eta: datetime | Keep | None, expect: OrderState | None,
                     data: Mapping[str, Any] | None,
                     window: tuple[datetime, datetime] | None = None) -> tuple[OrderRecord, NewEvent]:
    """Move one order along its lifecycle; IllegalTransition leaves it untouched."""
    # FOR UPDATE (PostgreSQL; SQLite's writer already holds the database lock): nobody else moves
    # this order between our check and our update.
    row = (await conn.execute(sa.select(orders).where(orders.c.order_id == order_id).with_for_update())).first()
    if row is None:
        raise UnknownOrder(order_id)
    current = order_record(row)
    if expect is not None and current.state != expect:
        raise IllegalTransition(f"order {order_id}", current.state.value, new.value)
    check_transition(order_id, current.state, new)
    if new == S.ACCEPTED:  # given back or retried: no vehicle holds it any more
        vehicle_id = None if vehicle_id is KEEP else vehicle_id
        sortie_id = None if sortie_id is KEEP else sortie_id
        eta = None if eta is KEEP else eta
    updated = replace(
        current, state=new, reason=reason, detail=detail, updated_at=now,
        parcel_on_board=parcel_on_board_after(current.parcel_on_board, new),
        attempts=current.attempts + (1 if new == S.ASSIGNED else 0),
        vehicle_id=current.vehicle_id if vehicle_id is KEEP else vehicle_id,
        sortie_id=current.sortie_id if sortie_id is KEEP else sortie_id,
        eta=current.eta if eta is KEEP else eta,
        window_earliest=window[0] if window else current.window_earliest,
        window_latest=window[1] if window else current.window_latest,
    )
    # The state in the WHERE clause too: should a future engine or isolation level let a second
    # writer through, it finds no row instead of overwriting the first one's step.
    done = await conn.execute(
        sa.update(orders).where(orders.c.order_id == order_id, orders.c.state == current.state.value)
        .values(state=new.value, reason=reason, detail=detail, parcel_on_board=updated.parcel_on_board,
                attempts=updated.attempts, vehicle_id=updated.vehicle_id, sortie_id=updated.sortie_id,
                eta=updated.eta, updated_at=now, window_earliest=updated.window_earliest,
                window_latest=updated.window_latest))
    if done.rowcount != 1:
        raise IllegalTransition(f"order {order_id}", current.state.value, new.value)
    event = NewEvent("order", order_id, f"order.{new.value}", {
        "from": current.state.value, "to": new.value, "reason": reason, "detail": detail,
        "vehicle_id": updated.vehicle_id, "sortie_id": updated.sortie_id,
        "eta": utc_iso(updated.eta) if updated.eta else None, "parcel_on_board": updated.parcel_on_board,
        **({"window": {"earliest": utc_iso(window[0]), "latest": utc_iso(window[1])}} if window else {}),
        **(data or {}),
    })
    return updated, event


async def get(conn: AsyncConnection, order_id: str) -> OrderRecord:
    row = (await conn.execute(sa.select(orders).where(orders.c.order_id == order_id))).first()
    if row is None:
        raise UnknownOrder(order_id)
    return order_record(row)


async def get_many(conn: AsyncConnection, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
    """The orders of `order_ids` that exist, by id (ids without a row are left out)."""
    return await _by_ids(conn, order_ids)


async def select(conn: AsyncConnection, *, states: Collection[OrderState] | None, vehicle_id: str | None,
                 since: datetime | None, limit: int, window_closed_by: datetime | None = None) -> list[OrderRecord]:
    query = sa.select(orders)
    if states is not None:
        query = query.where(orders.c.state.in_([s.value for s in states]))
    if vehicle_id is not None:
        query = query.where(orders.c.vehicle_id == vehicle_id)
    if window_closed_by is not None:
        query = query.where(orders.c.window_latest <= window_closed_by)
    if since is not None:  # "what changed since": in the order it changed, so a poller can resume
        query = query.where(orders.c.updated_at >= since).order_by(orders.c.updated_at, orders.c.order_id)
    else:
        query = query.order_by(orders.c.created_at, orders.c.order_id)
    return [order_record(r) for r in await conn.execute(query.limit(limit))]


async def unsettled(conn: AsyncConnection) -> list[OrderRecord]:
    """Every order whose story is not over (lifecycle.settled is false), oldest first."""
    query = (sa.select(orders)
             .where(sa.or_(orders.c.state.not_in([s.value for s in FINAL]), orders.c.parcel_on_board))
             .order_by(orders.c.created_at, orders.c.order_id))
    return [order_record(r) for r in await conn.execute(query)]


async def count_by_state(conn: AsyncConnection) -> dict[OrderState, int]:
    counts = dict.fromkeys(OrderState, 0)
    for state, n in await conn.execute(sa.select(orders.c.state, sa.func.count()).group_by(orders.c.state)):
        counts[OrderState(state)] = int(n)
    return counts


def order_record(row: sa.Row[Any]) -> OrderRecord:
    m = row._mapping
    x, y = m["dropoff_x_m"], m["dropoff_y_m"]
    return OrderRecord(
        order_id=m["order_id"], state=OrderState(m["state"]), site=m["site"], fingerprint=m["fingerprint"],
        payload=m["payload"], reason=m["reason"], detail=m["detail"], kinds=tuple(m["kinds"]), depot=m["depot"],
        dropoff_xy_m=(float(x), float(y)) if x is not None and y is not None else None, priority=m["priority"],
        window_earliest=m["window_earliest"], window_latest=m["window_latest"], vehicle_id=m["vehicle_id"],
        sortie_id=m["sortie_id"], eta=m["eta"], parcel_on_board=bool(m["parcel_on_board"]),
        attempts=int(m["attempts"]), created_at=m["created_at"], updated_at=m["updated_at"],
        pinned_vehicle=m["pinned_vehicle"],
    )


# ---- intake, item by item ----

def _key(item: ReceiveItem) -> str | None:
    return item.order.order_id if isinstance(item, Acceptance) else item.key


def _fingerprint(item: ReceiveItem) -> str:
    if item.order is not None:
        return item.order.fingerprint()
    # A malformed order has no Order to digest: digest its raw object the way Order does.
    payload = item.payload if isinstance(item, Rejection) else None
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


async def _by_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, OrderRecord]:
    found: dict[str, OrderRecord] = {}
    pending = sorted(ids)
    for start in range(0, len(pending), _IN_CHUNK):
        chunk = pending[start:start + _IN_CHUNK]
        for row in await conn.execute(sa.select(orders).where(orders.c.order_id.in_(chunk))):
            record = order_record(row)
            found[record.order_id] = record
    return found


def _new_record(item: ReceiveItem, key: str, fingerprint: str, now: datetime) -> OrderRecord:
    order: Order | None = item.order
    common: dict[str, Any] = {
        "order_id": key, "fingerprint": fingerprint, "created_at": now, "updated_at": now,
        "vehicle_id": None, "sortie_id": None, "eta": None, "parcel_on_board": False, "attempts": 0,
        "site": order.site if order else None, "priority": order.priority.value if order else None,
        "window_earliest": order.window.earliest if order else None,
        "window_latest": order.window.latest if order else None,
        "payload": order.to_json_dict() if order else (dict(item.payload) if isinstance(item, Rejection)
                                                        and item.payload is not None else None),
    }
    if isinstance(item, Acceptance):
        return OrderRecord(state=S.ACCEPTED, reason=None, detail=item.note or None, kinds=tuple(item.kinds),
                           depot=item.depot, dropoff_xy_m=(float(item.dropoff_xy_m[0]), float(item.dropoff_xy_m[1])),
                           **common)
    return OrderRecord(state=S.REJECTED, reason=item.reason, detail=item.detail, kinds=(), depot=None,
                       dropoff_xy_m=None, **common)


def _row(record: OrderRecord) -> dict[str, Any]:
    xy = record.dropoff_xy_m
    return {
        "order_id": record.order_id, "site": record.site, "payload": record.payload,
        "fingerprint": record.fingerprint, "state": record.state.value, "reason": record.reason,
        "detail": record.detail, "kinds": list(record.kinds), "depot": record.depot,
        "dropoff_x_m": xy[0] if xy else None, "dropoff_y_m": xy[1] if xy else None,
        "priority": record.priority, "window_earliest": record.window_earliest,
        "window_latest": record.window_latest, "vehicle_id": None, "sortie_id": None, "eta": None,
        "parcel_on_board": False, "attempts": 0, "created_at": record.created_at, "updated_at": record.updated_at,
    }


def _intake_events(item: ReceiveItem, record: OrderRecord) -> list[NewEvent]:
    received = NewEvent("order", record.order_id, "order.received",
                        {"fingerprint": record.fingerprint, "order": _redacted(record.payload)})
    if isinstance(item, Acceptance):
        return [received, NewEvent("order", record.order_id, "order.accepted", {
            "from": S.RECEIVED.value, "to": S.ACCEPTED.value, "kinds": list(item.kinds), "depot": item.depot,
            "note": item.note})]
    return [received, NewEvent("order", record.order_id, "order.rejected", _rejected_data(item))]


def _redacted(payload: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The order as the events show it: the recipient's PIN stays in the store."""
    if payload is None or payload.get("handoff_pin") is None:
        return payload
    return {**payload, "handoff_pin": "****"}


def _rejected_data(item: Rejection) -> dict[str, Any]:
    data: dict[str, Any] = {"from": S.RECEIVED.value, "to": S.REJECTED.value, "reason": item.reason,
                            "detail": item.detail}
    if item.key is None and item.payload is not None:
        data["payload"] = dict(item.payload)
    return data


async def set_etas(conn: AsyncConnection, etas: Mapping[str, datetime | None], now: datetime, *,
                   states: Collection[OrderState] = (S.ACCEPTED,)) -> list[NewEvent]:
    """New ETAs for orders in `states`: dispatch's forecast for orders still waiting for a vehicle,
    or a sortie's as its vehicle moves (in transit); an order that moved on meanwhile keeps its own."""
    events = []
    for order_id, eta in etas.items():
        done = await conn.execute(sa.update(orders).where(orders.c.order_id == order_id,
                                                          orders.c.state.in_([s.value for s in states]))
                                  .values(eta=eta, updated_at=now))
        if done.rowcount == 1:
            events.append(NewEvent("order", order_id, "order.eta", {"eta": utc_iso(eta) if eta else None}))
    return events


async def pin(conn: AsyncConnection, order_id: str, vehicle_id: str | None, now: datetime) -> tuple[OrderRecord, NewEvent]:
    """Pin an order to a vehicle (None: unpin). Only an order no vehicle holds yet can be pinned; a
    pin can be lifted at any time (it only matters when the order is dispatched again)."""
    current = await get(conn, order_id)
    if vehicle_id is not None and current.state not in (S.RECEIVED, S.ACCEPTED):
        raise IllegalTransition(f"order {order_id}", current.state.value, "pinned")
    await conn.execute(sa.update(orders).where(orders.c.order_id == order_id)
                       .values(pinned_vehicle=vehicle_id, updated_at=now))
    kind = "order.pinned" if vehicle_id is not None else "order.unpinned"
    return replace(current, pinned_vehicle=vehicle_id, updated_at=now), NewEvent("order", order_id, kind,
                                                                                 {"vehicle_id": vehicle_id})
