"""Alembic's entry point for the alembic CLI, when a developer checks or writes a revision:

    alembic -c fleetctl/store/migrations/alembic.ini -x url=sqlite+aiosqlite:///dev.db upgrade head
    alembic -c fleetctl/store/migrations/alembic.ini -x url=sqlite+aiosqlite:///dev.db \
        revision --autogenerate -m "what changes"

The service does not come through here: `fleetctl.store.migrate.upgrade` runs the same revisions
on the store's own connection when the store opens.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context

from fleetctl.store.engine import create_engine
from fleetctl.store.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


_url = context.get_x_argument(as_dictionary=True).get("url")
if not _url:
    raise SystemExit("name the database: alembic -c fleetctl/store/migrations/alembic.ini -x url=URL ...")
asyncio.run(_online(_url))
