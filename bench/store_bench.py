"""Order intake into the store: orders per second through `Store.receive_orders` in batches of 1,
10 and 100, on SQLite (a file in a temporary folder: WAL, synchronous=NORMAL) and on PostgreSQL (a
fresh schema, dropped afterwards). Each order is new and accepted: one row and two events.

The target is 1000 orders/s on SQLite. Figures are printed, never asserted.

Run from the repository root:
    python -m bench.store_bench [--orders 2000] [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]
    python -m bench.store_bench --postgres ""      # SQLite only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from fleetctl.errors import StoreError
from fleetctl.orders import Order
from fleetctl.orders.validate import Acceptance
from fleetctl.store import Store

BATCH_SIZES = (1, 10, 100)
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _acceptances(n: int, run: str) -> list[Acceptance]:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    window = {"earliest": start.isoformat(), "latest": (start + timedelta(hours=1)).isoformat()}
    return [Acceptance(Order.model_validate({"order_id": f"{run}-{i:06d}", "site": "bench", "dropoff": "locker-1",
                                             "weight_kg": 1.0, "window": window}),
                       ("drone",), "depot-a", (100.0, 200.0)) for i in range(n)]


async def _rate(store: Store, batch: int, orders: int) -> float:
    items = _acceptances(orders, f"b{batch}-{uuid.uuid4().hex[:6]}")  # built before timing: only the store is timed
    began = time.perf_counter()
    for start in range(0, len(items), batch):
        await store.receive_orders(items[start:start + batch])
    return orders / (time.perf_counter() - began)


@contextlib.asynccontextmanager
async def _sqlite() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory() as folder:
        async with Store.open(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}") as store:
            yield store


@contextlib.asynccontextmanager
async def _postgres(url: str) -> AsyncIterator[Store]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        async with Store.open(url, schema=schema) as store:
            yield store
    finally:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except (sa.exc.SQLAlchemyError, OSError):
            pass  # unreachable: nothing was created
        finally:
            await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=2000, help="orders per batch size (default 2000)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help='PostgreSQL URL ("" to skip)')
    args = parser.parse_args()
    engines: list[tuple[str, contextlib.AbstractAsyncContextManager[Store]]] = [("sqlite", _sqlite())]
    if args.postgres:
        engines.append(("postgresql", _postgres(args.postgres)))
    print(f"{'engine':<12}" + "".join(f"{f'batch {b}':>14}" for b in BATCH_SIZES) + "   (orders/s)")
    for name, opening in engines:
        try:
            async with opening as store:
                await _rate(store, 10, 100)  # warm up: connections, statement caches
                rates = [await _rate(store, batch, args.orders) for batch in BATCH_SIZES]
        except StoreError as e:
            print(f"{name:<12}unavailable: {e}")
            continue
        print(f"{name:<12}" + "".join(f"{r:>14,.0f}" for r in rates))


if __name__ == "__main__":
    asyncio.run(main())
