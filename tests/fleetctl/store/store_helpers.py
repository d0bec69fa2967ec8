"""Orders, batches, the test clock and the database target of the store tests (a module of its
own: several conftest.py files exist, so `import conftest` is ambiguous)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetctl.orders import Order, OrderState
from fleetctl.orders.validate import Acceptance
from fleetctl.store import Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WINDOW_START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
S = OrderState


class StepClock:
    """A clock that moves 1 ms every time it is read: times are deterministic and strictly
    increasing, so ordering by time is ordering by write."""

    speed_factor = 1.0

    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def now(self) -> datetime:
        self.t += timedelta(milliseconds=1)
        return self.t

    def wall_s(self, clock_s: float) -> float:
        return clock_s

    async def sleep(self, clock_s: float) -> None:
        self.t += timedelta(seconds=clock_s)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Target:
    """One database to test on; `open()` may be called again to reopen the same one."""

    engine: str
    url: str
    schema: str | None
    clock: StepClock

    def open(self) -> contextlib.AbstractAsyncContextManager[Store]:
        return Store.open(self.url, schema=self.schema, clock=self.clock)


def make_order(order_id: str, **changes: Any) -> Order:
    fields: dict[str, Any] = {
        "order_id": order_id, "site": "testsite", "dropoff": "locker-1", "weight_kg": 1.2,
        "window": {"earliest": WINDOW_START.isoformat(), "latest": (WINDOW_START + timedelta(hours=1)).isoformat()},
        "priority": "express",
    }
    fields.update(changes)
    return Order.model_validate(fields)


def accepted(order_id: str, **changes: Any) -> Acceptance:
    return Acceptance(make_order(order_id, **changes), ("drone", "robot"), "depot-a", (120.5, -40.25), "")


async def accept_orders(store: Store, *ids: str) -> None:
    results = await store.receive_orders([accepted(i) for i in ids])
    assert all(r.record is not None and r.record.state == S.ACCEPTED and not r.duplicate for r in results)


async def add_vehicle(store: Store, vehicle_id: str = "drone-1", sysid: int = 1) -> None:
    await store.upsert_vehicle(vehicle_id, sysid=sysid, kind="drone", model="quad-x", depot="depot-a")


#: A path through the lifecycle from accepted to delivered.
DELIVERY = (S.ASSIGNED, S.LOADING, S.IN_TRANSIT, S.DELIVERING, S.DELIVERED)
