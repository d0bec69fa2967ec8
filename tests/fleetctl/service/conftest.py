"""The store of the service under test, on each engine: `store_target` gives (store url, schema) —
(None, None) for the default SQLite file, or a fresh schema in the PostgreSQL database at
FLEETCTL_TEST_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test), dropped after.
Unreachable PostgreSQL fails the test unless FLEETCTL_SKIP_POSTGRES=1 (then it is skipped, saying why)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("FLEETCTL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _run(sql: str) -> None:
    conn = await asyncpg.connect(_libpq(PG_URL), timeout=3.0)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    if request.param == "sqlite":
        yield None, None
        return
    try:
        asyncio.run(_run("SELECT 1"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        problem = f"PostgreSQL at {PG_URL} is unreachable ({type(e).__name__}: {e})"
        if os.environ.get("FLEETCTL_SKIP_POSTGRES") == "1":
            pytest.skip(f"{problem}; skipped because FLEETCTL_SKIP_POSTGRES=1")
        pytest.fail(problem, pytrace=False)
    schema = f"svc_{uuid.uuid4().hex[:12]}"
    yield PG_URL, schema
    asyncio.run(_run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
