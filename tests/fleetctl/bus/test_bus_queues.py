"""The Bus's queues, without a broker: the outbox across reconnects, PUBACKs in arrival order, the
bounded mailbox."""

from __future__ import annotations

import asyncio

import pytest

from fleetctl.bus._inbox import AckTracker, Mailbox, MailboxClosed
from fleetctl.bus._outbox import Outbox
from fleetctl.errors import BusError, BusQueueFull


async def test_outbox_keeps_order_across_a_lost_connection() -> None:
    box = Outbox(limit=10)
    first, second, third = (box.put(f"t/{i}", b"x", 1, False) for i in range(3))
    telemetry = box.put("t/telemetry", b"x", 0, False)
    assert [(await box.take()).topic for _ in range(2)] == ["t/0", "t/1"]  # in flight
    assert box.connection_lost() == 1  # the QoS 0 message is dropped, not kept for later
    assert telemetry.done()
    assert not telemetry.delivered
    # The in-flight messages go out again first, in their order, then the rest.
    again = [await box.take() for _ in range(3)]
    assert again == [first, second, third]
    for delivery in again:
        box.confirm(delivery)
    await asyncio.wait_for(box.wait_idle(), 1)
    await first.wait()
    assert len(box) == 0
    assert first.delivered


async def test_outbox_withdraw_full_and_close() -> None:
    box = Outbox(limit=2)
    queued = box.put("t/a", b"x", 1, False)
    sent = box.put("t/b", b"x", 1, False)
    with pytest.raises(BusQueueFull):
        box.put("t/c", b"x", 1, False)
    assert box.withdraw(queued)  # never sent: taken back
    assert await box.take() is sent
    assert not box.withdraw(sent)  # already with the broker, maybe
    box.put("t/c", b"x", 1, False)
    assert box.close(BusError("closing")) == 2
    with pytest.raises(BusError, match="closing"):
        await sent.wait()
    with pytest.raises(BusError):
        box.put("t/d", b"x", 1, False)


def test_pubacks_go_out_in_arrival_order() -> None:
    sent: list[int] = []

    def send(mid: int, qos: int) -> bool:
        sent.append(mid)
        return True

    tracker = AckTracker(send)
    one, two, three = (tracker.arrived(mid, 1) for mid in (11, 12, 13))
    assert tracker.arrived(99, 0) is None  # QoS 0: nothing to acknowledge
    assert one
    assert two
    assert three
    assert tracker.settle(three)
    assert tracker.settle(two)
    assert sent == []  # 11 is still being stored: 12 and 13 wait behind it
    assert tracker.settle(one)
    assert sent == [11, 12, 13]
    late = tracker.arrived(14, 1)
    tracker.close()  # the connection is gone
    assert late is not None
    assert not tracker.settle(late)
    assert sent == [11, 12, 13]


async def test_mailbox_is_bounded_and_closes() -> None:
    box: Mailbox[int] = Mailbox(2)
    await box.put(1)
    await box.put(2)
    blocked = asyncio.create_task(box.put(3), name="blocked-put")
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert len(box) == 2
    assert await box.get() == 1
    await asyncio.wait_for(blocked, 1)
    assert [await box.get(), await box.get()] == [2, 3]
    waiting = asyncio.create_task(box.get(), name="waiting-get")
    await asyncio.sleep(0.01)
    box.close()
    with pytest.raises(MailboxClosed):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(MailboxClosed):
        await box.put(4)
