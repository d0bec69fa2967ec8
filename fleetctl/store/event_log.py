"""The append-only event log and the outbox cursors of its publishers.

Events are written last in every transaction, after the state change they record, and on
PostgreSQL under a transaction-level advisory lock. The lock makes commit order equal `seq` order:
without it, a transaction that drew seq 7 could commit after one that drew seq 8, and a publisher
that had already moved its cursor past 8 would never publish 7. Writing events last keeps the lock
short and means its holder never waits for a row lock, so the lock cannot take part in a deadlock.
SQLite has one writer at a time, so seq order is commit order there already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetctl.store.records import EntityKind, EventRecord
from fleetctl.store.schema import events, outbox_cursor

# One lock per schema, so sites sharing a PostgreSQL database in their own schemas do not queue
# behind each other.
_PG_EVENT_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended('fleetctl.events.' || current_schema(), 0))")


@dataclass(frozen=True)
class NewEvent:
    entity: EntityKind
    entity_id: str
    kind: str
    data: Mapping[str, Any]


async def append(conn: AsyncConnection, at: datetime, new: Sequence[NewEvent]) -> None:
    """Append events (the last writes of the transaction: see the module docstring)."""
    if not new:
        return
    await _lock(conn)
    # executemany without RETURNING: SQLite would fall back to one statement per row to return seqs
    await conn.execute(sa.insert(events), [{"at": at, "entity": e.entity, "entity_id": e.entity_id, "kind": e.kind,
                                            "data": dict(e.data)} for e in new])


async def append_one(conn: AsyncConnection, at: datetime, new: NewEvent) -> EventRecord:
    """Append one event and return it with its seq (the last write of the transaction)."""
    await _lock(conn)
    seq: int = (await conn.execute(sa.insert(events).returning(events.c.seq).values(
        at=at, entity=new.entity, entity_id=new.entity_id, kind=new.kind, data=dict(new.data)))).scalar_one()
    return EventRecord(seq, at, new.entity, new.entity_id, new.kind, dict(new.data))


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(_PG_EVENT_LOCK)


async def after(conn: AsyncConnection, seq: int, limit: int) -> list[EventRecord]:
    rows = await conn.execute(sa.select(events).where(events.c.seq > seq).order_by(events.c.seq).limit(limit))
    return [event_record(r) for r in rows]


async def of_entity(conn: AsyncConnection, entity: EntityKind, entity_id: str) -> list[EventRecord]:
    rows = await conn.execute(sa.select(events)
                              .where(events.c.entity == entity, events.c.entity_id == entity_id)
                              .order_by(events.c.seq))
    return [event_record(r) for r in rows]


async def last_seq(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0))) or 0)


async def cursor(conn: AsyncConnection, name: str) -> int:
    found = await conn.scalar(sa.select(outbox_cursor.c.last_seq).where(outbox_cursor.c.name == name))
    return int(found) if found is not None else 0


async def advance(conn: AsyncConnection, name: str, seq: int, at: datetime) -> int:
    """Move the cursor forward to `seq` (never back: a late acknowledgement of an older position
    must not make the publisher send events twice). Returns the cursor after the call."""
    moved = await conn.execute(sa.update(outbox_cursor)
                               .where(outbox_cursor.c.name == name, outbox_cursor.c.last_seq < seq)
                               .values(last_seq=seq, updated_at=at))
    if moved.rowcount == 0:
        current = await conn.scalar(sa.select(outbox_cursor.c.last_seq).where(outbox_cursor.c.name == name))
        if current is not None:
            return int(current)
        await conn.execute(sa.insert(outbox_cursor).values(name=name, last_seq=seq, updated_at=at))
    return seq


def event_record(row: sa.Row[Any]) -> EventRecord:
    m = row._mapping
    return EventRecord(int(m["seq"]), m["at"], cast(EntityKind, m["entity"]), m["entity_id"], m["kind"], m["data"])
