"""A small asyncio MAVLink client for the simulator tests: plain pymavlink, as an independent peer.

It binds the port the vehicle sends to (like a GCS on 14550 or MAVSDK on 14540+i), decodes with
`parse_buffer`, keeps a bounded history, sends a GCS HEARTBEAT every 0.05 s wall (>= 1 Hz sim up to 20x) unless told not to,
and offers awaitable helpers for commands, ACKs and the mission upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pymavlink.dialects.v20 import development as mavlink2

from sitl import VehicleSpec

HOME = (47.397742, 8.545594, 488.0)  # the reference captures' home


def quad(instance: int | None = None, home: tuple[float, float, float] = HOME) -> VehicleSpec:
    return VehicleSpec("quad", home[0], home[1], home[2], instance=instance)


def rover(instance: int | None = None, home: tuple[float, float, float] = HOME) -> VehicleSpec:
    return VehicleSpec("rover", home[0], home[1], home[2], instance=instance)


GCS_SYSID = 255
GCS_COMPID = 190


@dataclass
class Received:
    wall_s: float
    msg: Any


@dataclass
class StatusLog:
    texts: list[tuple[int, str]] = field(default_factory=list)  # (severity, joined text)
    _parts: dict[int, list[str]] = field(default_factory=dict)

    def add(self, msg: Any) -> None:
        text = msg.text
        parts = self._parts.setdefault(msg.id, [])
        parts.append(text)
        if len(text) < 50 or msg.id == 0:
            self.texts.append((msg.severity, "".join(parts)))
            self._parts.pop(msg.id, None)


class MavClient(asyncio.DatagramProtocol):
    def __init__(self, port: int, *, heartbeat: bool = True, mav_type: int = mavlink2.MAV_TYPE_GCS,
                 history: int = 20000, heartbeat_period_s: float = 0.05) -> None:
        self.port = port
        self.mav = mavlink2.MAVLink(None, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
        self.mav.robust_parsing = True
        self.history: deque[Received] = deque(maxlen=history)
        self.counter = 0
        self.counts: dict[str, int] = {}
        self.status = StatusLog()
        self.peer: tuple[str, int] | None = None
        self.heartbeat_enabled = heartbeat
        # 1 Hz in *simulated* time at up to 20x: the vehicle's link-loss timeout runs in sim time.
        self.heartbeat_period_s = heartbeat_period_s
        self.mav_type = mav_type
        self._event = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._hb_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MavClient:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", self.port))
        self._hb_task = asyncio.create_task(self._heartbeats(), name=f"mavclient-hb-{self.port}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._hb_task is not None:
            self._hb_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hb_task
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport is not registered as a DatagramTransport subclass.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        first = self.peer is None
        self.peer = (str(addr[0]), int(addr[1]))
        if first and self.heartbeat_enabled:
            self._send_heartbeat()  # like a GCS that answers the first HEARTBEAT it hears
        for msg in self.mav.parse_buffer(data) or []:
            kind = msg.get_type()
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind == "STATUSTEXT":
                self.status.add(msg)
            self.history.append(Received(time.monotonic(), msg))
            self.counter += 1
        self._event.set()

    async def _heartbeats(self) -> None:
        while True:
            if self.heartbeat_enabled and self.peer is not None:
                self._send_heartbeat()
            await asyncio.sleep(self.heartbeat_period_s)

    def _send_heartbeat(self) -> None:
        self.send(mavlink2.MAVLink_heartbeat_message(self.mav_type, mavlink2.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3))

    def send(self, msg: Any) -> None:
        assert self._transport is not None
        assert self.peer is not None, "no vehicle heard yet"
        self._transport.sendto(msg.pack(self.mav), self.peer)

    # --- waiting ------------------------------------------------------------------------------
    def mark(self) -> int:
        return self.counter

    def since(self, mark: int, kind: str | None = None) -> list[Any]:
        n_new = self.counter - mark
        items = list(self.history)[-n_new:] if n_new > 0 else []
        return [r.msg for r in items if kind is None or r.msg.get_type() == kind]

    async def wait_for(self, pred: Callable[[Any], bool], timeout_s: float, *, since: int | None = None) -> Any:
        mark = self.counter if since is None else since
        async with asyncio.timeout(timeout_s):
            while True:
                for msg in self.since(mark):
                    if pred(msg):
                        return msg
                mark = self.counter
                self._event.clear()
                await self._event.wait()

    async def wait_type(self, kind: str, timeout_s: float, pred: Callable[[Any], bool] | None = None,
                        *, since: int | None = None) -> Any:
        return await self.wait_for(lambda m: m.get_type() == kind and (pred is None or pred(m)), timeout_s,
                                   since=since)

    async def connected(self, timeout_s: float = 10.0) -> Any:
        return await self.wait_type("HEARTBEAT", timeout_s, since=0)

    async def wait_text(self, fragment: str, timeout_s: float) -> str:
        async with asyncio.timeout(timeout_s):
            while True:
                for _sev, text in self.status.texts:
                    if fragment in text:
                        return text
                self._event.clear()
                await self._event.wait()

    # --- commands -----------------------------------------------------------------------------
    async def command_long(self, target: int, command: int, params: Sequence[float] = (), *,
                           timeout_s: float = 5.0, final: bool = True) -> Any:
        p = list(params) + [0.0] * (7 - len(params))
        mark = self.mark()
        self.send(mavlink2.MAVLink_command_long_message(target, 1, command, 0, *p))
        return await self._ack(command, mark, timeout_s, final)

    async def command_int(self, target: int, command: int, frame: int, params: Sequence[float] = (),
                          x: int = 0, y: int = 0, z: float = 0.0, *, timeout_s: float = 5.0) -> Any:
        p = list(params) + [0.0] * (4 - len(params))
        mark = self.mark()
        self.send(mavlink2.MAVLink_command_int_message(target, 1, frame, command, 0, 0, *p, x, y, z))
        return await self._ack(command, mark, timeout_s, True)

    async def _ack(self, command: int, mark: int, timeout_s: float, final: bool) -> Any:
        def done(m: Any) -> bool:
            return (m.get_type() == "COMMAND_ACK" and m.command == command
                    and (not final or m.result != mavlink2.MAV_RESULT_IN_PROGRESS))

        return await self.wait_for(done, timeout_s, since=mark)

    async def set_mode(self, target: int, main: int, sub: int = 0) -> Any:
        return await self.command_long(target, mavlink2.MAV_CMD_DO_SET_MODE, [1, main, sub])

    async def heartbeat_of(self, target: int, pred: Callable[[Any], bool], timeout_s: float) -> Any:
        return await self.wait_type("HEARTBEAT", timeout_s, lambda m: m.get_srcSystem() == target and pred(m))

    # --- mission upload -----------------------------------------------------------------------
    async def upload(self, target: int, items: Sequence[Any], mission_type: int = 0,
                     timeout_s: float = 10.0) -> int:
        mark = self.mark()
        self.send(mavlink2.MAVLink_mission_count_message(target, 1, len(items), mission_type))
        async with asyncio.timeout(timeout_s):
            while True:
                msg = await self.wait_for(
                    lambda m: m.get_type() in ("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK"),
                    timeout_s, since=mark)
                mark = self.mark()
                if msg.get_type() == "MISSION_ACK":
                    return int(msg.type)
                item = items[msg.seq]
                self.send(item)

    async def mission_checked(self, target: int, count: int, timeout_s: float = 3.0) -> Any:
        """Wait, after an upload, for the MISSION_CURRENT that counts `count` items in a state other than
        NO_MISSION: PX4's navigator has checked the new mission and found it valid. PX4 ACKs an upload
        before that check and DENIES a MISSION_START that comes first (see `sitl.navigator`)."""
        return await self.wait_type(
            "MISSION_CURRENT", timeout_s,
            lambda m: m.get_srcSystem() == target and m.total == count and m.mission_state != 1)


async def until(pred: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> None:
    """Poll a condition on the simulator's state (snapshots change without a message to wait for)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if pred():
                return
            await asyncio.sleep(poll_s)


def waypoint(seq: int, lat: float, lon: float, rel_alt_m: float, command: int = 16,
             params: Sequence[float] = (0, 0, 0, 0), frame: int = 6, mission_type: int = 0) -> Any:
    p = list(params) + [0.0] * (4 - len(params))
    return mavlink2.MAVLink_mission_item_int_message(
        1, 1, seq, frame, command, 0, 1, *p, round(lat * 1e7), round(lon * 1e7), rel_alt_m, mission_type)
