"""Our own UDP socket in front of MAVSDK (a `raw://` connection): each datagram goes only where it is meant.

MAVSDK's UDP connection sends every outgoing message to every peer it has heard, whatever the
message's target system, and every system it knows pings all of them (a broadcast PING every few
seconds per system). One port serving N vehicles then costs N sends per message and ~N²/5
datagrams per second: measured at 250 vehicles, 27,000 datagrams/s out for 7,000 in, which filled
our one core with kernel send work (and the vehicles with pings to answer) until MAVSDK's receive
thread starved and the kernel dropped what it could not take.

So the socket is ours: received datagrams are handed to MAVSDK as raw bytes (`Mavsdk.
pass_received_raw_bytes`), and what MAVSDK sends (`subscribe_raw_bytes_to_be_sent`) is routed here:
to the address its target system was last heard from, to everybody when it has no target (our
GCS HEARTBEAT), and not at all for MAVSDK's broadcast PING requests (it only measures latency with
them). The socket's kernel receive buffer is a few MiB: a fleet sends in bursts.

The socket is read until it is empty (at most `MAX_READS_PER_WAKEUP` datagrams) each time the loop
finds it readable, not one datagram per loop pass as an asyncio datagram endpoint reads. With one
per pass, a busy loop reads less than a fleet sends: measured with the built-in simulator on the
same loop (3 vehicles at 20x, 2 busy cores), up to 1.6 MB queued in the kernel, so a mission request
sat there for seconds behind telemetry, and the vehicle gave the transfer up ("Operation timeout",
5 vehicle seconds, 0.25 s of wall time at 20x) before MAVSDK saw the request.

A protocol we speak ourselves (parameters, see `_params`) sends its frames with `send_frame` and
sees the frames it waits for through a tap (`listening`); with no tap open, received datagrams are
not looked into beyond the first header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from pymavlink.dialects.v20 import development as mavlink2

from vehicles.mavsdk_backend._clock import TIME_BOOT_OFFSETS, VehicleClock, time_boot_ms

log = logging.getLogger(__name__)

_V2, _V1 = 0xFD, 0xFE
_MSG_PING = 4


def _target_offsets() -> dict[int, int]:
    """MAVLink message id -> payload offset of its target_system field (wire order)."""
    offsets: dict[int, int] = {}
    for msgid, cls in mavlink2.mavlink_map.items():
        names = list(getattr(cls, "ordered_fieldnames", ()))
        if "target_system" not in names:
            continue
        tokens = re.findall(r"\d*[a-zA-Z]", cls.unpacker.format.lstrip("<"))
        if len(tokens) != len(names):
            continue
        offsets[msgid] = struct.calcsize("<" + "".join(tokens[: names.index("target_system")]))
    return offsets


def frame_header(frame: bytes) -> tuple[int, int, int] | None:
    """(system id, message id, payload offset) of a MAVLink 1 or 2 frame."""
    if len(frame) >= 10 and frame[0] == _V2:
        return frame[5], frame[7] | frame[8] << 8 | frame[9] << 16, 10
    if len(frame) >= 6 and frame[0] == _V1:
        return frame[3], frame[5], 6
    return None


def iter_frames(datagram: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(system id, message id, payload) of each MAVLink frame in a datagram (PX4 packs several into
    one). The payload is as sent: MAVLink 2 cuts its trailing zeros off. Stops at anything else."""
    i, end = 0, len(datagram)
    while i < end:
        magic = datagram[i]
        if magic == _V2 and i + 10 <= end:
            n = datagram[i + 1]
            msgid = datagram[i + 7] | datagram[i + 8] << 8 | datagram[i + 9] << 16
            yield datagram[i + 5], msgid, datagram[i + 10:i + 10 + n]
            i += 12 + n + (13 if datagram[i + 2] & 0x01 else 0)  # signed frames carry 13 more bytes
        elif magic == _V1 and i + 6 <= end:
            n = datagram[i + 1]
            yield datagram[i + 3], datagram[i + 5], datagram[i + 6:i + 6 + n]
            i += 8 + n
        else:
            return


Tap = Callable[[int, bytes], None]  # (message id, payload), called on the loop


def udp_listen_address(url: str) -> tuple[str, int] | None:
    """(host, port) a MAVSDK UDP server URL binds ("udpin://0.0.0.0:14550", "udp://:14540")."""
    parts = urlsplit(url)
    if parts.scheme not in ("udpin", "udp"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname or "0.0.0.0", port) if port is not None else None


#: Datagrams read per readable event: enough to empty the socket of a fleet's burst, few enough
#: that the rest of the loop runs in between (each is one MAVSDK parse, a few microseconds).
MAX_READS_PER_WAKEUP = 256
_MAX_DATAGRAM_BYTES = 65_535


class RawUdpLink:
    """The fleet's UDP endpoint; MAVSDK sees it as a `raw://` connection."""

    def __init__(self, mavsdk: Any, receive_buffer_bytes: int) -> None:
        self._mavsdk = mavsdk
        self._receive_buffer_bytes = receive_buffer_bytes
        self._offsets = _target_offsets()
        self._peers: dict[int, tuple[str, int]] = {}  # system id -> address it was last heard from
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._taps: dict[int, list[Tap]] = {}  # system id -> taps on its frames
        self._seq = 0
        self.clocks: dict[int, VehicleClock] = {}  # system id -> its clock rate (see _clock)
        self.received = 0
        self.sent = 0

    async def open(self, host: str, port: int) -> None:
        """Bind (OSError if the port is taken) and start feeding MAVSDK."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if self._receive_buffer_bytes > 0:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer_bytes)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._read_ready)
        # Called on MAVSDK's threads; MAVSDK keeps calling until it is destroyed, and the wrapper
        # holds this subscription's trampoline until then.
        self._mavsdk.subscribe_raw_bytes_to_be_sent(self._send)

    def close(self) -> None:
        """Stop reading at once (before MAVSDK is destroyed: its handle must not be fed after)."""
        if self._closed:
            return
        self._closed = True
        sock, loop = self._sock, self._loop
        if sock is not None:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(sock.fileno())
            sock.close()  # MAVSDK's threads sending after this get an OSError, which _send ignores

    @property
    def local_address(self) -> tuple[str, int] | None:
        return None if self._sock is None else self._sock.getsockname()[:2]

    def peers(self) -> dict[int, tuple[str, int]]:
        return dict(self._peers)

    @contextlib.contextmanager
    def listening(self, sysid: int, tap: Tap) -> Iterator[None]:
        """Every frame from `sysid` goes to `tap` (on the loop) while the block runs."""
        self._taps.setdefault(sysid, []).append(tap)
        try:
            yield
        finally:
            taps = self._taps[sysid]
            taps.remove(tap)
            if not taps:
                del self._taps[sysid]

    def next_seq(self) -> int:
        """A sequence number for a frame of ours (MAVSDK numbers its own frames separately)."""
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def send_frame(self, sysid: int, frame: bytes) -> bool:
        """Send one frame of ours to where `sysid` was last heard from; False if never heard."""
        addr = self._peers.get(sysid)
        if self._sock is None or self._closed or addr is None:
            return False
        try:
            self._sock.sendto(frame, addr)
        except OSError:  # full send buffer: UDP, the caller retries
            return False
        self.sent += 1
        return True

    # ---- in: on the loop ----

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(MAX_READS_PER_WAKEUP):
            if self._closed:
                return
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for an earlier send; the next datagram may be fine
                self.error_received(exc)
                continue
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._closed:
            return
        self.received += 1
        header = frame_header(data)
        if header is not None:
            sysid = header[0]
            if self._peers.get(sysid) != addr:
                self._peers[sysid] = (str(addr[0]), int(addr[1]))
            self._clock_sample(sysid, data)
        self._mavsdk.pass_received_raw_bytes(data)
        if self._taps:
            self._feed_taps(data)

    def _clock_sample(self, sysid: int, datagram: bytes) -> None:
        # A few samples per vehicle and wall second suffice: most datagrams are not looked into.
        clock = self.clocks.get(sysid)
        if clock is None:
            clock = self.clocks[sysid] = VehicleClock()
        now_s = time.monotonic()
        if not clock.wants_sample(now_s):
            return
        for frame_sysid, msgid, payload in iter_frames(datagram):
            if msgid in TIME_BOOT_OFFSETS and frame_sysid == sysid:
                boot_ms = time_boot_ms(msgid, payload)
                if boot_ms is not None:
                    clock.observe(now_s, boot_ms)
                return

    def _feed_taps(self, data: bytes) -> None:
        try:
            for sysid, msgid, payload in iter_frames(data):
                for tap in tuple(self._taps.get(sysid, ())):
                    tap(msgid, payload)
        except Exception:  # a tap's bug must not stop the socket
            log.exception("tap failed on a datagram")

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)  # ICMP unreachable from a vehicle that went away

    # ---- out: on MAVSDK's threads ----

    def _send(self, frame: bytes) -> None:
        sock = self._sock
        header = frame_header(frame)
        if sock is None or header is None:
            return
        _sysid, msgid, payload_at = header
        target = 0
        offset = self._offsets.get(msgid)
        if offset is not None and offset < frame[1]:  # MAVLink 2 cuts trailing zeros off the payload
            target = frame[payload_at + offset]
        peers = self._peers
        if target:
            addr = peers.get(target)
            destinations = [addr] if addr is not None else list(peers.values())
        elif msgid == _MSG_PING:
            return  # MAVSDK's broadcast latency probe: N² datagrams for a statistic we do not use
        else:
            destinations = list(peers.values())
        for destination in destinations:
            try:
                sock.sendto(frame, destination)
                self.sent += 1
            except OSError:  # full send buffer or a closed socket: UDP, the sender retries
                pass
