"""Brings a database to the newest schema revision on start (Alembic, programmatically).

The service never shells out to the `alembic` command. Reading the revision scripts is file I/O,
so it happens in a worker thread; the migration itself then runs on the store's own async
connection through `run_sync` (SQLAlchemy's greenlet bridge: the driver stays asynchronous, nothing
blocks the event loop), inside one transaction, so a failed migration leaves the database as it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetctl.store.schema import metadata

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "head"


def load_scripts() -> ScriptDirectory:
    """The revision scripts, read from disk (blocking: call it in a thread)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    script.get_revisions(HEAD)  # loads every revision module now, not later on the event loop
    return script


async def upgrade(connection: AsyncConnection) -> None:
    """Migrate the database behind `connection` (in a transaction the caller owns) to the head."""
    script = await asyncio.to_thread(load_scripts)
    await connection.run_sync(_upgrade_sync, script)


async def current_revision(connection: AsyncConnection) -> str | None:
    """The revision the database is at (None: an empty database)."""
    def read(sync_conn: sa.Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    return await connection.run_sync(read)


def _upgrade_sync(connection: sa.Connection, script: ScriptDirectory) -> None:
    def steps(rev: Any, _context: Any) -> Any:
        # exactly what `alembic.command.upgrade` does; it would also re-read every script from disk
        return script._upgrade_revs(HEAD, rev)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with EnvironmentContext(config, script, fn=steps, destination_rev=HEAD) as context:
        # the same as env.py does for the alembic CLI
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
