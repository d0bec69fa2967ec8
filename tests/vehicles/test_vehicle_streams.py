"""Latest-value and bounded event streams, and the thread-to-loop inbox."""

from __future__ import annotations

import asyncio
import threading

from vehicles.mavsdk_backend._bridge import Inbox, call_with_callback
from vehicles.streams import Fanout, Latest


async def test_latest_coalesces_for_a_slow_reader() -> None:
    latest = Latest(0)
    changes = latest.changes()
    assert await anext(changes) == 0
    for i in range(1, 100):
        latest.set(i)
    # A reader that was busy sees only the newest value, not a backlog.
    assert await anext(changes) == 99
    waiter = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0)
    assert not waiter.done()
    latest.set(100)
    assert await asyncio.wait_for(waiter, 1) == 100


async def test_fanout_is_bounded_and_registered_at_subscribe() -> None:
    fanout: Fanout[int] = Fanout(maxsize=3)
    reader = fanout.subscribe()
    for i in range(10):  # published before the first anext: still delivered (newest 3)
        fanout.publish(i)
    got = [await anext(reader) for _ in range(3)]
    assert got == [7, 8, 9]


async def test_inbox_coalesces_latest_and_keeps_ordered() -> None:
    applied: list[str] = []
    batches: list[int] = []
    inbox = Inbox(asyncio.get_running_loop(), lambda: batches.append(len(applied)))

    def producer() -> None:
        for i in range(50):
            inbox.latest("pos", lambda i=i: applied.append(f"pos{i}"))
            inbox.ordered(lambda i=i: applied.append(f"text{i}"))

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join()
    await asyncio.sleep(0.05)
    texts = [a for a in applied if a.startswith("text")]
    positions = [a for a in applied if a.startswith("pos")]
    assert texts == [f"text{i}" for i in range(50)]
    assert positions[-1] == "pos49"
    # at most one position per batch: the rest were superseded before the loop woke
    assert 1 <= len(positions) <= len(batches) <= 100


async def test_call_with_callback_returns_callback_args_without_user_data() -> None:
    def start(callback: object) -> None:
        threading.Thread(target=callback, args=("RESULT", "payload", None)).start()  # type: ignore[arg-type]

    assert await asyncio.wait_for(call_with_callback(start), 2) == ("RESULT", "payload")
