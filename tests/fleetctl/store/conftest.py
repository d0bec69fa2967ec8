"""Fixtures of the store tests: every test runs on both engines.

    sqlite      a fresh database file in tmp_path
    postgresql  a fresh schema in the database at FLEETCTL_TEST_POSTGRES_URL
                (default postgresql+asyncpg://postgres@127.0.0.1:5432/test), dropped afterwards

When PostgreSQL cannot be reached, its variants fail, saying so, unless FLEETCTL_SKIP_POSTGRES=1
(then they are skipped with the reason): CI has PostgreSQL, and a silently skipped engine is an
untested one.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from store_helpers import StepClock, Target

from fleetctl.store import Store

PG_URL = os.environ.get("FLEETCTL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PG_PROBE_TIMEOUT_S = 3.0


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _probe() -> str | None:
    try:
        conn = await asyncpg.connect(_libpq_url(PG_URL), timeout=PG_PROBE_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return f"PostgreSQL at {PG_URL} is unreachable ({type(e).__name__}: {e})"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres() -> str:
    """The PostgreSQL URL, once it answered (probed once per session)."""
    problem = asyncio.run(_probe())
    if problem is not None:
        if os.environ.get("FLEETCTL_SKIP_POSTGRES") == "1":
            pytest.skip(f"{problem}; skipped because FLEETCTL_SKIP_POSTGRES=1")
        pytest.fail(f"{problem}. Start one (trust auth, database 'test'), point FLEETCTL_TEST_POSTGRES_URL "
                    "at one, or set FLEETCTL_SKIP_POSTGRES=1 to skip the PostgreSQL variants.", pytrace=False)
    return PG_URL


async def _drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(_libpq_url(url), timeout=PG_PROBE_TIMEOUT_S)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Which engine (a sync fixture: the PostgreSQL probe runs its own event loop, outside the test's)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/fleet.db"
    url: str = request.getfixturevalue("postgres")
    return url


@pytest.fixture
async def target(engine_url: str) -> AsyncIterator[Target]:
    if engine_url.startswith("sqlite"):
        yield Target("sqlite", engine_url, None, StepClock())
        return
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield Target("postgresql", engine_url, schema, StepClock())
    finally:
        await _drop_schema(engine_url, schema)


@pytest.fixture
async def store(target: Target) -> AsyncIterator[Store]:
    async with target.open() as opened:
        yield opened
