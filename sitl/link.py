"""One MAVLink link of a simulated vehicle: a UDP socket, like one PX4 `mavlink` instance.

Outgoing packets are queued and flushed once per batch of simulator steps, packed several to a datagram
(as PX4 does: it fills a network buffer and sends it at the end of its update loop), which keeps
the syscall count low. Incoming datagrams are decoded with pymavlink's `parse_buffer`.
PX4 starts sending to its configured remote port and answers whoever talks to it; this link does
the same. Fault hooks: link loss (nothing in or out) and random packet loss.
"""

from __future__ import annotations

import asyncio
import random
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import cast

from pymavlink.dialects.v20 import development as mavlink2

from sitl.codec import Encoder

MAX_DATAGRAM_BYTES = 1400
MAV_TYPE_GCS = 6

MessageHandler = Callable[[mavlink2.MAVLink_message, "Link"], None]


class Link(asyncio.DatagramProtocol):
    """UDP endpoint + encoder + decoder + fault hooks for one vehicle link."""

    def __init__(
        self,
        name: str,
        *,
        sysid: int,
        remote: tuple[str, int],
        clock: Callable[[], float],
        on_message: MessageHandler,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.encoder = Encoder(sysid, 1)
        self.remote = remote
        self._clock = clock
        self._on_message = on_message
        self._rng = rng
        self._mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self._mav.robust_parsing = True
        self._out: list[bytes] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = asyncio.Event()
        self.blocked_until_s = -1.0
        self.packet_loss = 0.0
        self.gcs_heartbeat_s: float | None = None  # sim time of the last GCS heartbeat heard
        self.peer_heard_s: float | None = None
        self.sent_packets = 0
        self.received_packets = 0

    # --- asyncio protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport is not registered as a DatagramTransport subclass.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._closed.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while nobody listens yet: PX4 keeps sending too.
        pass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.blocked:
            return
        if self.packet_loss > 0.0 and self._rng.random() < self.packet_loss:
            return
        self.remote = (str(addr[0]), int(addr[1]))
        try:
            messages = self._mav.parse_buffer(data) or []
        except mavlink2.MAVError:
            return
        now = self._clock()
        self.peer_heard_s = now
        for msg in messages:
            self.received_packets += 1
            if msg.get_type() == "HEARTBEAT" and msg.type == MAV_TYPE_GCS:
                self.gcs_heartbeat_s = now
            self._on_message(msg, self)

    # --- sending ----------------------------------------------------------------------------
    @property
    def blocked(self) -> bool:
        return self._clock() < self.blocked_until_s

    @property
    def has_gcs(self) -> bool:
        """PX4 sends STATUSTEXT only on links where a MAV_TYPE_GCS heartbeat was seen."""
        return self.gcs_heartbeat_s is not None

    def queue(self, packet: bytes) -> None:
        self._out.append(packet)

    def send_now(self, packet: bytes) -> None:
        """Queue and flush at once: command ACKs and protocol replies should not wait for a tick."""
        self._out.append(packet)
        self.flush()

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        transport = self._transport
        if transport is None or self.blocked:
            return
        if self.packet_loss > 0.0:
            out = [p for p in out if self._rng.random() >= self.packet_loss]
            if not out:
                return
        self.sent_packets += len(out)
        lengths = list(accumulate(map(len, out)))
        if lengths[-1] <= MAX_DATAGRAM_BYTES:
            transport.sendto(b"".join(out), self.remote)
            return
        # Cut at packet boundaries into datagrams of at most MAX_DATAGRAM_BYTES (bisect: C speed).
        start = 0
        sent_bytes = 0
        n = len(out)
        while start < n:
            end = max(bisect_right(lengths, sent_bytes + MAX_DATAGRAM_BYTES, lo=start), start + 1)
            transport.sendto(b"".join(out[start:end]), self.remote)
            sent_bytes = lengths[end - 1]
            start = end

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        else:
            self._closed.set()

    async def wait_closed(self) -> None:
        """Until the socket is really closed (asyncio closes it on the next loop iteration)."""
        await self._closed.wait()


async def open_link(
    link: Link, bind_host: str, bind_port: int
) -> Link:
    """Bind `link` to UDP `bind_host:bind_port`."""
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: link, local_addr=(bind_host, bind_port))
    return link
