"""The Store: the service's one door to its database.

    async with Store.open("sqlite+aiosqlite:///var/lib/fleetctl/fleet.db") as store:
        results = await store.receive_orders([acceptance, rejection])
        await store.transition("A-1001", OrderState.CANCELLED, expect=OrderState.ACCEPTED)

Every method is one transaction. A state change and its event commit together or not at all, and a
typed error (IllegalTransition, UnknownOrder, ...) rolls the whole transaction back. Failures of
the database or its driver come out as StoreError, with the original as `__cause__`.
Timestamps come from the injected clock (simulated time in a demo) and are stored as UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetctl.clock import Clock, WallClock
from fleetctl.errors import FleetError, StoreError
from fleetctl.orders.lifecycle import OrderState
from fleetctl.store import event_log, migrate, order_queries, sortie_queries, vehicle_queries
from fleetctl.store.engine import WRITE_OPTION, check_schema_name, create_engine, is_sqlite
from fleetctl.store.event_log import NewEvent
from fleetctl.store.records import (
    KEEP,
    EntityKind,
    EventRecord,
    Keep,
    OrderRecord,
    ReceiveItem,
    ReceiveResult,
    SortieRecord,
    VehicleRecord,
)

#: Failures of the database, its driver or the connection; everything else is a bug and propagates.
_DB_ERRORS = (sa.exc.SQLAlchemyError, OSError)
# Two concurrent batches on PostgreSQL can both find an id new and both insert it: the second
# fails on the primary key, and on retry it reads the first one's row (a duplicate or a conflict).
_RECEIVE_ATTEMPTS = 3
_PG_MIGRATION_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended('fleetctl.migrate', 0))")


class Store:
    """Orders, sorties, vehicles and the event log. Open with `Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._clock = clock
        # SQLite takes one writer at a time anyway; queueing ours here (fairly, on the event loop)
        # beats having them poll for the file lock. Other processes still wait on the busy timeout.
        self._write_lock: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if is_sqlite(engine) else contextlib.nullcontext())

    # ---- opening and closing ----

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str | URL, *, clock: Clock | None = None, schema: str | None = None,
                   echo: bool = False) -> AsyncIterator[Store]:
        """A store on `url` (sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB),
        migrated to the newest schema. `schema` (PostgreSQL only) keeps this site's tables in their
        own schema, created if missing."""
        store = await cls.connect(url, clock=clock, schema=schema, echo=echo)
        try:
            yield store
        finally:
            await store.close()

    @classmethod
    async def connect(cls, url: str | URL, *, clock: Clock | None = None, schema: str | None = None,
                      echo: bool = False) -> Store:
        """Like `open`, for an owner that closes the store itself (`await store.close()`)."""
        engine = create_engine(url, schema=schema, echo=echo)
        store = cls(engine, clock or WallClock())
        try:
            await store._migrate(schema)
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self._engine.dialect.name

    async def schema_revision(self) -> str | None:
        async with self._read() as conn:
            return await migrate.current_revision(conn)

    async def _migrate(self, schema: str | None) -> None:
        async with self._write() as (conn, _now):
            if conn.dialect.name == "postgresql":
                # Two services starting at once must not both create the tables.
                await conn.execute(_PG_MIGRATION_LOCK)
                if schema is not None:
                    check_schema_name(schema)
                    await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await migrate.upgrade(conn)

    # ---- orders ----

    async def receive_orders(self, items: Sequence[ReceiveItem]) -> list[ReceiveResult]:
        """Store a batch of intake results in one transaction, one result per item, in order.

        A new id gets its row (accepted, or rejected with its reason) and the events
        `order.received` + `order.accepted` / `order.rejected`. An id already known (stored earlier
        or earlier in this batch) with the same content is a duplicate: nothing changes. With other
        content it is a conflict: the stored order stays as it is, `order.id_conflict` is logged.
        """
        for attempt in range(1, _RECEIVE_ATTEMPTS + 1):
            try:
                async with self._write() as (conn, now):
                    results, new_events = await order_queries.receive(conn, items, now)
                    await event_log.append(conn, now, new_events)
                return results
            except StoreError as e:
                if attempt == _RECEIVE_ATTEMPTS or not isinstance(e.__cause__, sa.exc.IntegrityError):
                    raise
        raise AssertionError("unreachable")

    async def transition(self, order_id: str, new_state: OrderState, *, reason: str | None = None,
                         detail: str | None = None, vehicle_id: str | Keep | None = KEEP,
                         sortie_id: str | Keep | None = KEEP, eta: datetime | Keep | None = KEEP,
                         expect: OrderState | None = None, data: Mapping[str, Any] | None = None,
                         window: tuple[datetime, datetime] | None = None) -> OrderRecord:
        """Move an order to `new_state` and log `order.<new_state>`, atomically.

        IllegalTransition if the lifecycle forbids the step, or if `expect` is given and the order is
        in another state (someone else moved it first); UnknownOrder if there is no such order.
        `reason`/`detail` say why the order is in its new state (None clears them); vehicle, sortie
        and ETA are kept unless given (a step back to `accepted` clears them). `data` goes into the
        event only (e.g. a proof of delivery). `window` gives the order a new delivery window (an
        order tried again after nobody took the parcel)."""
        async with self._write() as (conn, now):
            record, event = await order_queries.transition(
                conn, order_id, new_state, now, reason=reason, detail=detail, vehicle_id=vehicle_id,
                sortie_id=sortie_id, eta=_utc(eta), expect=expect, data=data,
                window=(_utc(window[0]), _utc(window[1])) if window else None)
            await event_log.append(conn, now, [event])
        return record

    async def set_etas(self, etas: Mapping[str, datetime | None], *,
                       states: Collection[OrderState] = (OrderState.ACCEPTED,)) -> int:
        """Forecast delivery times of orders in `states` (by default dispatch's, for orders waiting
        for a vehicle); logs `order.eta` for each (so its status is published again). Returns how
        many were set."""
        if not etas:
            return 0
        async with self._write() as (conn, now):
            events = await order_queries.set_etas(conn, {k: _utc(v) for k, v in etas.items()}, now, states=states)
            await event_log.append(conn, now, events)
        return len(events)

    async def pin_order(self, order_id: str, vehicle_id: str | None) -> OrderRecord:
        """An operator's pin (None unpins); logs `order.pinned`/`order.unpinned`. IllegalTransition
        once a vehicle holds the order; UnknownOrder if there is none."""
        async with self._write() as (conn, now):
            record, event = await order_queries.pin(conn, order_id, vehicle_id, now)
            await event_log.append(conn, now, [event])
        return record

    async def get_order(self, order_id: str) -> OrderRecord:
        async with self._read() as conn:
            return await order_queries.get(conn, order_id)

    async def get_orders(self, order_ids: Iterable[str]) -> dict[str, OrderRecord]:
        """The orders of `order_ids` that exist, by id, in one read (one snapshot): a read per order
        cost the event publisher more than intake itself (~0.6 ms of CPU each on SQLite)."""
        async with self._read() as conn:
            return await order_queries.get_many(conn, order_ids)

    async def list_orders(self, state: OrderState | Collection[OrderState] | None = None, *,
                          vehicle_id: str | None = None, since: datetime | None = None,
                          window_closed_by: datetime | None = None, limit: int = 1000) -> list[OrderRecord]:
        """Orders in `state` (one or several), on `vehicle_id`, changed at or after `since`, whose
        delivery window ended at or before `window_closed_by`: oldest first by creation time, or by
        change time when `since` is given."""
        states = [state] if isinstance(state, OrderState) else state
        async with self._read() as conn:
            return await order_queries.select(conn, states=states, vehicle_id=vehicle_id, since=_utc(since),
                                              window_closed_by=_utc(window_closed_by), limit=limit)

    async def order_events(self, order_id: str) -> list[EventRecord]:
        async with self._read() as conn:
            return await event_log.of_entity(conn, "order", order_id)

    async def unsettled_orders(self) -> list[OrderRecord]:
        """Every order whose story is not over: what a restarted service must pick up again."""
        async with self._read() as conn:
            return await order_queries.unsettled(conn)

    async def count_by_state(self) -> dict[OrderState, int]:
        """How many orders are in each state (every state, zeros included)."""
        async with self._read() as conn:
            return await order_queries.count_by_state(conn)

    # ---- sorties ----

    async def create_sortie(self, sortie_id: str, order_id: str, vehicle_id: str, plan: Mapping[str, Any], *,
                            state: str = "planned", mission_items: int | None = None,
                            eta: datetime | None = None) -> tuple[SortieRecord, OrderRecord]:
        """Record a planned sortie and assign its order to it (accepted -> assigned), atomically.
        `plan` is the SortiePlan as JSON (`dataclasses.asdict(plan)`)."""
        async with self._write() as (conn, now):
            await vehicle_queries.get(conn, vehicle_id)  # UnknownVehicleId rather than a foreign key error
            order, order_event = await order_queries.transition(
                conn, order_id, OrderState.ASSIGNED, now, reason=None, detail=None, vehicle_id=vehicle_id,
                sortie_id=sortie_id, eta=_utc(eta), expect=OrderState.ACCEPTED, data=None)
            sortie, sortie_event = await sortie_queries.insert(
                conn, sortie_id, order_id, vehicle_id, state, plan, mission_items, now)
            await event_log.append(conn, now, [sortie_event, order_event])
        return sortie, order

    async def update_sortie(self, sortie_id: str, state: str, *, detail: str | None = None,
                            mission_items: int | Keep | None = KEEP, uploaded_at: datetime | Keep | None = KEEP,
                            plan: Mapping[str, Any] | Keep = KEEP, expect: str | None = None,
                            data: Mapping[str, Any] | None = None) -> SortieRecord:
        """Move a sortie to `state` and log `sortie.<state>`. IllegalTransition once it has finished
        or when it is not in `expect`; UnknownSortie if there is none."""
        async with self._write() as (conn, now):
            record, event = await sortie_queries.update(
                conn, sortie_id, state, now, detail=detail, mission_items=mission_items, uploaded_at=_utc(uploaded_at),
                plan=plan, expect=expect, data=data)
            await event_log.append(conn, now, [event])
        return record

    async def get_sortie(self, sortie_id: str) -> SortieRecord:
        async with self._read() as conn:
            return await sortie_queries.get(conn, sortie_id)

    async def open_sorties(self) -> list[SortieRecord]:
        """Sorties not finished (done or failed), oldest first: what a restart resumes."""
        async with self._read() as conn:
            return await sortie_queries.unfinished(conn)

    async def sortie_events(self, sortie_id: str) -> list[EventRecord]:
        async with self._read() as conn:
            return await event_log.of_entity(conn, "sortie", sortie_id)

    # ---- vehicles ----

    async def upsert_vehicle(self, vehicle_id: str, *, sysid: int, kind: str, model: str, depot: str | None = None,
                             last_state: Mapping[str, Any] | None = None) -> VehicleRecord:
        """Add a vehicle to the fleet or update its identity (grounding is kept)."""
        async with self._write() as (conn, now):
            return await vehicle_queries.upsert(conn, vehicle_id, sysid=sysid, kind=kind, model=model, depot=depot,
                                                last_state=last_state, now=now)

    async def record_vehicle_state(self, vehicle_id: str, state: Mapping[str, Any]) -> None:
        """Keep the vehicle's latest snapshot (telemetry is not an event: it would flood the log)."""
        async with self._write() as (conn, now):
            await vehicle_queries.set_last_state(conn, vehicle_id, state, now)

    async def set_grounded(self, vehicle_id: str, grounded: bool, *, reason: str = "") -> VehicleRecord:
        """Ground a vehicle (dispatch leaves it alone) or clear it; logs `vehicle.grounded` /
        `vehicle.ungrounded` when that changes anything."""
        async with self._write() as (conn, now):
            record, event = await vehicle_queries.set_grounded(conn, vehicle_id, grounded, reason, now)
            await event_log.append(conn, now, [event] if event else [])
        return record

    async def get_vehicle(self, vehicle_id: str) -> VehicleRecord:
        async with self._read() as conn:
            return await vehicle_queries.get(conn, vehicle_id)

    async def list_vehicles(self) -> list[VehicleRecord]:
        async with self._read() as conn:
            return await vehicle_queries.all_vehicles(conn)

    # ---- the event log and its publishers ----

    async def append_event(self, entity: EntityKind, entity_id: str, kind: str,
                           data: Mapping[str, Any] | None = None) -> EventRecord:
        """Log an event that changes no row of ours (a zone activated, the service started)."""
        async with self._write() as (conn, now):
            return await event_log.append_one(conn, now, NewEvent(entity, entity_id, kind, data or {}))

    async def events_after(self, seq: int, limit: int = 1000) -> list[EventRecord]:
        """Events with seq > `seq`, in order: what a publisher whose cursor is at `seq` sends next."""
        async with self._read() as conn:
            return await event_log.after(conn, seq, limit)

    async def last_event_seq(self) -> int:
        async with self._read() as conn:
            return await event_log.last_seq(conn)

    async def outbox_cursor(self, name: str) -> int:
        """The last seq publisher `name` has published (0: none yet)."""
        async with self._read() as conn:
            return await event_log.cursor(conn, name)

    async def advance_outbox(self, name: str, seq: int) -> int:
        """Record that publisher `name` has published everything up to `seq` (never moves back)."""
        async with self._write() as (conn, now):
            return await event_log.advance(conn, name, seq, now)

    # ---- transactions ----

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[tuple[AsyncConnection, datetime]]:
        """A write transaction and the time it happens at (read once, so its rows and events agree)."""
        try:
            async with self._write_lock, self._writer.begin() as conn:
                yield conn, self._clock.now()
        except FleetError:
            raise
        except _DB_ERRORS as e:
            raise StoreError(f"store write failed: {type(e).__name__}: {e}") from e

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: one consistent snapshot, never waiting for writers (WAL)."""
        try:
            async with self._engine.connect() as conn:
                yield conn
        except FleetError:
            raise
        except _DB_ERRORS as e:
            raise StoreError(f"store read failed: {type(e).__name__}: {e}") from e


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: None) -> None: ...
@overload
def _utc(moment: datetime | Keep | None) -> datetime | Keep | None: ...
def _utc(moment: datetime | Keep | None) -> datetime | Keep | None:
    """An aware time in UTC (what the store keeps and returns); a naive one is refused: its zone is unknown."""
    if not isinstance(moment, datetime):
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: give the store aware (UTC) times")
    return moment.astimezone(UTC)
