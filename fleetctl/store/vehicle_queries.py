"""Vehicles in SQL: the fleet as the service knows it (who, which system id, grounded or not, the
last state seen), kept so a restarted service can find every vehicle again by its system id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetctl.errors import UnknownVehicleId
from fleetctl.store.event_log import NewEvent
from fleetctl.store.records import VehicleRecord
from fleetctl.store.schema import vehicles


async def upsert(conn: AsyncConnection, vehicle_id: str, *, sysid: int, kind: str, model: str, depot: str | None,
                 last_state: Mapping[str, Any] | None, now: datetime) -> VehicleRecord:
    """Insert or update the vehicle's identity; `grounded` and `created_at` survive an update, and so
    does `last_state` unless a new one is given."""
    values: dict[str, Any] = {"vehicle_id": vehicle_id, "sysid": sysid, "kind": kind, "model": model,
                              "depot": depot, "grounded": False, "created_at": now, "updated_at": now,
                              "last_state": dict(last_state) if last_state is not None else None}
    # Both dialects spell the upsert the same way (INSERT ... ON CONFLICT DO UPDATE).
    insert = postgresql.insert(vehicles) if conn.dialect.name == "postgresql" else sqlite.insert(vehicles)
    changed = ["sysid", "kind", "model", "depot", "updated_at"] + (["last_state"] if last_state is not None else [])
    statement = insert.values(**values).on_conflict_do_update(
        index_elements=[vehicles.c.vehicle_id], set_={c: insert.excluded[c] for c in changed})
    await conn.execute(statement)
    return await get(conn, vehicle_id)


async def set_last_state(conn: AsyncConnection, vehicle_id: str, state: Mapping[str, Any], now: datetime) -> None:
    done = await conn.execute(sa.update(vehicles).where(vehicles.c.vehicle_id == vehicle_id)
                              .values(last_state=dict(state), updated_at=now))
    if done.rowcount != 1:
        raise UnknownVehicleId(vehicle_id)


async def set_grounded(conn: AsyncConnection, vehicle_id: str, grounded: bool, reason: str, now: datetime,
                       ) -> tuple[VehicleRecord, NewEvent | None]:
    """Ground a vehicle or clear it to fly; no event when it already was (a repeated command)."""
    current = await get(conn, vehicle_id, for_update=True)
    if current.grounded == grounded:
        return current, None
    await conn.execute(sa.update(vehicles).where(vehicles.c.vehicle_id == vehicle_id)
                       .values(grounded=grounded, updated_at=now))
    kind = "vehicle.grounded" if grounded else "vehicle.ungrounded"
    updated = await get(conn, vehicle_id)
    return updated, NewEvent("vehicle", vehicle_id, kind, {"grounded": grounded, "reason": reason})


async def get(conn: AsyncConnection, vehicle_id: str, *, for_update: bool = False) -> VehicleRecord:
    query = sa.select(vehicles).where(vehicles.c.vehicle_id == vehicle_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        raise UnknownVehicleId(vehicle_id)
    return vehicle_record(row)


async def all_vehicles(conn: AsyncConnection) -> list[VehicleRecord]:
    return [vehicle_record(r) for r in await conn.execute(sa.select(vehicles).order_by(vehicles.c.vehicle_id))]


def vehicle_record(row: sa.Row[Any]) -> VehicleRecord:
    m = row._mapping
    return VehicleRecord(m["vehicle_id"], int(m["sysid"]), m["kind"], m["model"], m["depot"], bool(m["grounded"]),
                         m["last_state"], m["created_at"], m["updated_at"])
