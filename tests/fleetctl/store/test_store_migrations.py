"""Opening a store: the schema is migrated on an empty database, reopening changes nothing, the
migrated schema is exactly the one the queries are written against, and the engine is set up."""

from __future__ import annotations

import asyncio
import importlib.resources
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_helpers import Target, accept_orders

from fleetctl.errors import StoreError
from fleetctl.store import Store
from fleetctl.store.migrate import load_scripts
from fleetctl.store.schema import metadata

TABLES = {"orders", "sorties", "vehicles", "events", "outbox_cursor", "alembic_version"}


async def _tables(store: Store) -> set[str]:
    async with store._engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_an_empty_database_is_migrated_to_the_head(target: Target) -> None:
    head = load_scripts().get_current_head()
    async with target.open() as store:
        assert await store.schema_revision() == head == "0002"
        assert await _tables(store) == TABLES


async def test_reopening_is_idempotent_and_keeps_the_data(target: Target) -> None:
    async with target.open() as store:
        await accept_orders(store, "A-1")
    for _ in range(2):
        async with target.open() as store:
            assert await store.schema_revision() == "0002"
            assert (await store.get_order("A-1")).order_id == "A-1"
            assert len(await store.events_after(0)) == 2


async def test_the_migrated_schema_is_the_schema_of_the_queries(store: Store) -> None:
    # Drift between migrations/ and schema.py would show here as a non-empty diff.
    def diff(conn: sa.Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))

    async with store._engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    async with Store.open(f"sqlite+aiosqlite:///{tmp_path}/fleet.db") as store, store._engine.connect() as conn:
        pragmas = {p: (await conn.exec_driver_sql(f"PRAGMA {p}")).scalar()
                   for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_the_migrations_ship_inside_the_package() -> None:
    # hatch puts every file under the package directory in the wheel; the store needs these at run time
    migrations = importlib.resources.files("fleetctl.store") / "migrations"
    assert (migrations / "env.py").is_file()
    assert (migrations / "versions" / "0001_initial.py").is_file()


@pytest.mark.parametrize("url", ["mysql+aiomysql://u@h/db", "not a url"])
async def test_an_unsupported_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError):
        async with Store.open(url):
            pass


async def test_an_unreachable_postgresql_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="store"):
        async with Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/test"):
            pass


async def test_an_unopenable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        async with Store.open(f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/fleet.db"):
            pass
    # aiosqlite stops the worker thread of a failed connect without waiting for it; let it finish
    # while this loop still runs (else it reports "Event loop is closed" in some later test)
    for _ in range(100):
        if not any("_connection_worker_thread" in t.name for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)
