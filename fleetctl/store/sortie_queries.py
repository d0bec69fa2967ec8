"""Sorties in SQL: created with their plan, moved through their phases, found again after a crash.

The phases themselves are the runner's (fleetctl.sorties.SortiePhase); the store only refuses to
move a sortie that has finished, and checks `expect` like it does for orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetctl.errors import IllegalTransition, UnknownSortie
from fleetctl.orders.model import utc_iso
from fleetctl.store.event_log import NewEvent
from fleetctl.store.records import KEEP, SORTIE_FINISHED, Keep, SortieRecord
from fleetctl.store.schema import sorties


async def insert(conn: AsyncConnection, sortie_id: str, order_id: str, vehicle_id: str, state: str,
                 plan: Mapping[str, Any], mission_items: int | None, now: datetime) -> tuple[SortieRecord, NewEvent]:
    record = SortieRecord(sortie_id, order_id, vehicle_id, state, None, dict(plan), mission_items, None, now, now)
    await conn.execute(sa.insert(sorties).values(
        sortie_id=sortie_id, order_id=order_id, vehicle_id=vehicle_id, state=state, detail=None, plan=dict(plan),
        mission_items=mission_items, uploaded_at=None, created_at=now, updated_at=now))
    event = NewEvent("sortie", sortie_id, f"sortie.{state}", {
        "order_id": order_id, "vehicle_id": vehicle_id, "state": state, "mission_items": mission_items})
    return record, event


async def update(conn: AsyncConnection, sortie_id: str, state: str, now: datetime, *, detail: str | None,
                 mission_items: int | Keep | None, uploaded_at: datetime | Keep | None,
                 plan: Mapping[str, Any] | Keep, expect: str | None,
                 data: Mapping[str, Any] | None) -> tuple[SortieRecord, NewEvent]:
    row = (await conn.execute(sa.select(sorties).where(sorties.c.sortie_id == sortie_id).with_for_update())).first()
    if row is None:
        raise UnknownSortie(sortie_id)
    current = sortie_record(row)
    if current.state in SORTIE_FINISHED or (expect is not None and current.state != expect):
        raise IllegalTransition(f"sortie {sortie_id}", current.state, state)
    values: dict[str, Any] = {"state": state, "detail": detail, "updated_at": now}
    if mission_items is not KEEP:
        values["mission_items"] = mission_items
    if uploaded_at is not KEEP:
        values["uploaded_at"] = uploaded_at
    if not isinstance(plan, Keep):
        values["plan"] = dict(plan)
    await conn.execute(sa.update(sorties).where(sorties.c.sortie_id == sortie_id).values(**values))
    updated = SortieRecord(
        sortie_id, current.order_id, current.vehicle_id, state, detail, values.get("plan", current.plan),
        values.get("mission_items", current.mission_items), values.get("uploaded_at", current.uploaded_at),
        current.created_at, now)
    event = NewEvent("sortie", sortie_id, f"sortie.{state}", {
        "from": current.state, "to": state, "detail": detail, "order_id": current.order_id,
        "vehicle_id": current.vehicle_id, "mission_items": updated.mission_items,
        "uploaded_at": utc_iso(updated.uploaded_at) if updated.uploaded_at else None, **(data or {})})
    return updated, event


async def get(conn: AsyncConnection, sortie_id: str) -> SortieRecord:
    row = (await conn.execute(sa.select(sorties).where(sorties.c.sortie_id == sortie_id))).first()
    if row is None:
        raise UnknownSortie(sortie_id)
    return sortie_record(row)


async def unfinished(conn: AsyncConnection) -> list[SortieRecord]:
    rows = await conn.execute(sa.select(sorties).where(sorties.c.state.not_in(sorted(SORTIE_FINISHED)))
                              .order_by(sorties.c.created_at, sorties.c.sortie_id))
    return [sortie_record(r) for r in rows]


def sortie_record(row: sa.Row[Any]) -> SortieRecord:
    m = row._mapping
    return SortieRecord(m["sortie_id"], m["order_id"], m["vehicle_id"], m["state"], m["detail"], m["plan"],
                        m["mission_items"], m["uploaded_at"], m["created_at"], m["updated_at"])
