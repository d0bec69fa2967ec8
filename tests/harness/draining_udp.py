"""A UDP endpoint for a test's ground station that reads its socket until it is empty each time the
loop finds it readable. asyncio's datagram endpoint reads one datagram per loop pass; the built-in
simulator on the same busy loop then sends faster than the test reads, the socket's queue grows, and
what the test takes for "now" (the newest vehicle time it has read) falls behind the vehicle's. The
product's own socket does the same for the same reason (vehicles/mavsdk_backend/_transport.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

MAX_READS_PER_WAKEUP = 256


@contextlib.asynccontextmanager
async def draining_endpoint(protocol: Any, local_addr: tuple[str, int]) -> AsyncIterator[socket.socket]:
    """Bind `local_addr` and feed `protocol` (an asyncio.DatagramProtocol) every datagram that has
    come; the protocol's `transport` is the socket itself (`sendto(data, addr)` works the same)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind(local_addr)
    except OSError:
        sock.close()
        raise

    def ready() -> None:
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data, addr = sock.recvfrom(65_535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP unreachable for an earlier send
                protocol.error_received(exc)
                continue
            protocol.datagram_received(data, addr)

    protocol.connection_made(sock)
    loop.add_reader(sock.fileno(), ready)
    try:
        yield sock
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
