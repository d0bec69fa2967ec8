"""One async engine for either database: SQLite through aiosqlite (the embedded default) or
PostgreSQL through asyncpg. Everything engine-specific about connecting lives here.

SQLite is set up for a service that writes all the time: WAL (readers never wait for the writer),
synchronous=NORMAL (a commit is durable against a process crash; a power cut may lose the last
transactions but never corrupts the file), foreign keys enforced, and a busy timeout so a second
process waits for the write lock instead of failing at once. Write transactions start with BEGIN
IMMEDIATE: they take the write lock first, so two writers never both read and then deadlock on the
upgrade to a write (SQLite would fail one of them with "database is locked").
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fleetctl.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 5_000
#: The execution option that marks a connection as a writer (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "fleetctl_write"
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "sqlite+aiosqlite": "sqlite+aiosqlite",
            "postgresql": "postgresql+asyncpg", "postgresql+asyncpg": "postgresql+asyncpg"}
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def store_url(url: str | URL) -> URL:
    """The URL with its async driver: `sqlite:///x.db` and `postgresql://...` are accepted too."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(f"not a database URL: {url!r}") from e
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise StoreError(f"unsupported database {parsed.drivername!r}: use sqlite+aiosqlite:///PATH "
                         "or postgresql+asyncpg://USER@HOST:PORT/DB")
    return parsed.set(drivername=driver)


def create_engine(url: str | URL, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An engine for `url`. `schema` (PostgreSQL only) puts the store's tables in that schema, so
    several sites (or tests) can share one database without seeing each other's tables."""
    parsed = store_url(url)
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise StoreError("a schema applies to PostgreSQL only; give SQLite its own file instead")
        engine = create_async_engine(parsed, echo=echo)
        _set_up_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        check_schema_name(schema)
        connect_args["server_settings"] = {"search_path": schema}
    # pre-ping: a long-running service outlives database restarts and idle-connection reapers
    return create_async_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def check_schema_name(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise StoreError(f"schema name {schema!r}: use lower-case letters, digits and _ (at most 63)")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _set_up_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions away from the driver (it would BEGIN on its own, deferred, and COMMIT
        # before DDL); `_on_begin` issues them instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON",
                           f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"):
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        writer = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")
