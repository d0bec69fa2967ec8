"""Fleet scale: one ground process tracking N simulated vehicles, side by side with a bare peer.

For each fleet size N (default 50, 200, 500) and each ground side:
  - "bare":     a bare asyncio + pymavlink receive loop (the peer: the least a Python GCS can do),
  - "vehicles": our `vehicles` MAVSDK backend (MavsdkFleet),
the simulator (`sitl.SimFleet`, all N vehicles in ONE other process) streams every vehicle's GCS link at
PX4's default rates for a "Normal" mavlink instance (stream profile "px4", ~55 messages/s per vehicle) to
the ground process. The simulated API (onboard) links are stopped with SET_MESSAGE_INTERVAL -1: they would
stream ~400 messages/s per vehicle to ports nobody reads. One MAVLink network addresses at most 254
vehicles (system ids), so fleets above --shard-size (250) are split into shards, each with its own ground
UDP port (and, for "vehicles", its own MavsdkFleet) in the same ground process.

Printed per N and ground side:
  - loss counted at the application on both ends, per vehicle, over the window: the simulator counts
    each vehicle's messages that its GCS link put on the wire, the ground side counts those that reached
    its application. "msgs": bare = decoded by pymavlink and handed to its handler; vehicles = read by
    the backend's own socket and handed to MAVSDK (which parses them in C++). "HB+MC": the HEARTBEAT and
    MISSION_CURRENT messages, which both ground sides hand one by one to their code (for "vehicles" the
    backend's MAVSDK callbacks, counted there; its other telemetry is sampled from MAVSDK's cache, not
    delivered per message). Window edges are exact: each vehicle's GCS link is silent for --gap-s before
    t0 (streams keep their schedule, the packets are dropped unsent) and from t1 on, the ground counts
    from the middle of that gap and, after t1, until its input has been quiet for a moment (a message
    that arrives in the gap was sent before it: it is reported, never silently counted). The kernel's
    drop counter of the ground sockets (/proc/net/udp) is printed beside it as a diagnostic only;
  - datagrams/s in and out of the ground side (out: MAVSDK's own UDP connection sent every message to
    every vehicle, ~N^2 datagrams/s, which is why the backend now puts its own socket in front of it);
  - the round trip of a cheap command (COMMAND_LONG REQUEST_MESSAGE(AUTOPILOT_VERSION) -> COMMAND_ACK; for
    "vehicles" `MavsdkVehicle.request_message`), round-robin at --cmd-rate per second, one outstanding per
    vehicle: p50 / p95 / max, and how many failed (no ACK within 2 s);
  - CPU (% of one core) and RSS of the ground process (pinned to one core unless --no-pin); the simulator's
    achieved speed and CPU, to show whether it kept up.
Targets: 500 vehicles with < 1 % loss, p95 round trip < 100 ms on one core, RSS per vehicle < 5 MB.

Both sides count over the same wall-clock window [t0, t1] fixed by the driver (the delivery count
drains past t1, see above). Each run is bounded (startup + window + 3 s + 15 s grace) and its processes
(own process groups) are killed whatever happens. Nothing here asserts a timing.
All ports are free ports on 127.0.0.1, never PX4's defaults.

Run from the repository root:  python -m bench.fleet_scale [--sizes 50 200 500] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parent.parent
CMD_REQUEST_MESSAGE = 512
MSG_AUTOPILOT_VERSION = 148
GCS_SYSID, GCS_COMPID = 255, 190
CMD_TIMEOUT_S = 2.0
SHARD_SIZE = 250
GAP_S = 1.0  # each GCS link is silent this long before t0: nothing sent before t0 is in flight at t0
DRAIN_QUIET_S = 0.3  # after t1 the ground counts until nothing new reached it for this long ...
DRAIN_MAX_S = 3.0  # ... or t1 + this (the simulator sends nothing after t1)
CALLBACK_TYPES = frozenset({0, 42})  # HEARTBEAT, MISSION_CURRENT: delivered one by one on both ground sides


# --- ports ---------------------------------------------------------------------------------------


def free_udp_block(n: int, avoid: set[int] | None = None) -> int:
    """Base of n contiguous free UDP ports on 127.0.0.1 (each one checked by binding it)."""
    avoid = avoid or set()
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + n > 65535 or any(p in avoid for p in range(base, base + n)):
            continue
        socks: list[socket.socket] = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError(f"no block of {n} free UDP ports")


def socket_drops(ports: list[int]) -> dict[int, int] | None:
    """Datagrams the kernel dropped, per socket inode, for OUR UDP sockets bound to `ports`.

    From /proc/net/udp (last column); only sockets this process holds count (matched by inode), so a
    stranger's socket on the same port number cannot skew the figure.
    """
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
        mine = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:["):
                    mine.add(int(target[8:-1]))
    except OSError:
        return None
    wanted = set(ports)
    drops: dict[int, int] = {}
    for line in lines:
        fields = line.split()
        inode = int(fields[9])
        if inode in mine and int(fields[1].rsplit(":", 1)[1], 16) in wanted:
            drops[inode] = int(fields[-1])
    return drops


def drops_between(before: dict[int, int] | None, after: dict[int, int] | None) -> int | None:
    if before is None or after is None:
        return None
    return sum(n - before.get(inode, 0) for inode, n in after.items())


def process_usage() -> tuple[float, int]:
    import psutil  # type: ignore[import-untyped]

    proc = psutil.Process()
    times = proc.cpu_times()
    return times.user + times.system, proc.memory_info().rss


def pin_to_core(core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {core})


async def sleep_until(t_wall: float) -> None:
    delay = t_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def count_frames(datagram: bytes) -> int:
    """MAVLink 1/2 frames in a datagram (PX4 and the simulator pack several into one)."""
    i, n, end = 0, 0, len(datagram)
    while i < end:
        magic = datagram[i]
        if magic == 0xFD and i + 10 <= end:
            i += 12 + datagram[i + 1] + (13 if datagram[i + 2] & 0x01 else 0)  # signed: 13 more bytes
        elif magic == 0xFE and i + 6 <= end:
            i += 8 + datagram[i + 1]
        else:
            break
        n += 1
    return n


def frame_msgid(frame: bytes) -> int:
    if frame[0] == 0xFD:
        return frame[7] | frame[8] << 8 | frame[9] << 16
    return frame[5]


Key = tuple[int, int]  # (shard, system id)


class Tally:
    """What reached the ground side's application, per vehicle, from t0 - gap/2 until closed.

    `add` may be called from any thread (MAVSDK's callback thread too); each key is counted by one
    thread only. `early` counts what arrived before t0: the simulator was silent then, so anything
    there was sent before the gap (a backlog longer than gap/2) and makes `delivered` too high.
    """

    def __init__(self, t0: float, t1: float, gap_s: float) -> None:
        self.from_s, self.t0, self.t1 = t0 - gap_s / 2, t0, t1
        self.closed = False
        self.msgs: dict[Key, int] = {}
        self.callbacks: dict[Any, int] = {}  # key, or a tracker mapped to a key at the end
        self.early = 0
        self.in_window = 0  # msgs in [t0, t1): the receive rate
        self.total = 0  # everything counted: the drain watches it
        self._lock = threading.Lock()

    def _open(self) -> float | None:
        now = time.time()
        return None if self.closed or now < self.from_s else now

    def add_msgs(self, key: Key, n: int) -> None:
        """On the loop."""
        now = self._open()
        if now is None or n == 0:
            return
        with self._lock:
            self.msgs[key] = self.msgs.get(key, 0) + n
            self.total += n
            if now < self.t0:
                self.early += n
            elif now < self.t1:
                self.in_window += n

    def add_callbacks(self, key: Any, n: int = 1) -> None:
        """On the loop (bare), or on a MAVSDK callback thread (vehicles: one per shard)."""
        now = self._open()
        if now is None or n == 0:
            return
        with self._lock:
            self.callbacks[key] = self.callbacks.get(key, 0) + n
            self.total += n
            if now < self.t0:
                self.early += n

    async def drain(self) -> None:
        """After t1: until nothing new arrived for DRAIN_QUIET_S (at most until t1 + DRAIN_MAX_S), then close."""
        await sleep_until(self.t1)
        last, quiet_since = -1, time.monotonic()
        while time.time() < self.t1 + DRAIN_MAX_S:
            if self.total != last:
                last, quiet_since = self.total, time.monotonic()
            elif time.monotonic() - quiet_since >= DRAIN_QUIET_S:
                break
            await asyncio.sleep(0.05)
        self.closed = True

    def delivered(self, callbacks: dict[Key, int] | None = None) -> list[list[int]]:
        """[[shard, sysid, messages, HEARTBEAT + MISSION_CURRENT], ...]"""
        cbs = self.callbacks if callbacks is None else callbacks
        keys = sorted(set(self.msgs) | set(k for k in cbs if isinstance(k, tuple)))
        return [[k[0], k[1], self.msgs.get(k, 0), cbs.get(k, 0)] for k in keys]


# --- ground side 1: bare asyncio + pymavlink ------------------------------------------------------


class BareGround(asyncio.DatagramProtocol):
    """Decodes every datagram, keeps a small state per vehicle, answers nothing but command ACKs."""

    def __init__(self, shard: int, sources: range, tally: Tally) -> None:
        from pymavlink.dialects.v20 import development as mavlink2

        # only our simulator's GCS-link ports: other programs on this host may send to a port we took;
        # vehicle instance i sends from sources[i] with system id i + 1
        self.shard = shard
        self.sources = sources
        self.tally = tally

        self.m = mavlink2
        self.mav = mavlink2.MAVLink(None, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
        self.mav.robust_parsing = True
        self.transport: asyncio.DatagramTransport | None = None
        self.counting = False
        self.received = 0
        self.datagrams = 0
        self.out_datagrams = 0
        self.addr: dict[int, tuple[str, int]] = {}
        self.state: dict[int, dict[str, float]] = {}
        self.pending: dict[int, tuple[float, asyncio.Future[float]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython 3.11's selector datagram transport does not subclass asyncio.DatagramTransport)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr[1] not in self.sources:
            return
        try:
            msgs = self.mav.parse_buffer(data) or []
        except self.m.MAVError:
            return
        if self.counting:
            self.datagrams += 1
            self.received += len(msgs)
        delivered = callbacks = 0
        for msg in msgs:
            sysid = msg.get_srcSystem()
            mtype = msg.get_type()
            if mtype != "BAD_DATA":
                delivered += 1
                if mtype in ("HEARTBEAT", "MISSION_CURRENT"):
                    callbacks += 1
            if sysid == 0:  # pymavlink leaves the header of messages it cannot decode (UNKNOWN_<id>) empty
                continue
            st = self.state.get(sysid)
            if st is None:
                st = self.state[sysid] = {}
                self.addr[sysid] = (str(addr[0]), int(addr[1]))
            if mtype == "GLOBAL_POSITION_INT":
                st["lat"], st["lon"], st["alt"] = msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3
            elif mtype == "HEARTBEAT":
                st["mode"], st["armed"] = msg.custom_mode, msg.base_mode & 0x80
                st["heard"] = time.monotonic()
            elif mtype == "SYS_STATUS":
                st["battery"] = msg.battery_remaining
            elif mtype == "COMMAND_ACK" and msg.command == CMD_REQUEST_MESSAGE:
                pending = self.pending.pop(sysid, None)
                if pending is not None and not pending[1].done():
                    pending[1].set_result(time.perf_counter() - pending[0])
        key = (self.shard, addr[1] - self.sources.start + 1)
        self.tally.add_msgs(key, delivered)
        self.tally.add_callbacks(key, callbacks)

    def send(self, sysid: int, packet: bytes) -> None:
        if self.transport is not None and sysid in self.addr:
            self.transport.sendto(packet, self.addr[sysid])
            if self.counting:
                self.out_datagrams += 1

    async def request(self, sysid: int) -> float:
        """One REQUEST_MESSAGE round trip in seconds (TimeoutError past CMD_TIMEOUT_S)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        msg = self.mav.command_long_encode(sysid, 1, CMD_REQUEST_MESSAGE, 0, MSG_AUTOPILOT_VERSION,
                                           0, 0, 0, 0, 0, 0)
        self.pending[sysid] = (time.perf_counter(), fut)
        self.send(sysid, msg.pack(self.mav))
        try:
            async with asyncio.timeout(CMD_TIMEOUT_S):
                return await fut
        finally:
            self.pending.pop(sysid, None)

    async def heartbeats(self) -> None:
        """A GCS heartbeat to every vehicle at 1 Hz, as a ground station (and MAVSDK) sends."""
        hb = self.mav.heartbeat_encode(self.m.MAV_TYPE_GCS, self.m.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        while True:
            packet = hb.pack(self.mav)
            for sysid in list(self.addr):
                self.send(sysid, packet)
            await asyncio.sleep(1.0)


def _same(ground: BareGround) -> BareGround:
    return ground


async def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    _, rss0 = process_usage()
    loop = asyncio.get_running_loop()
    grounds: list[BareGround] = []
    transports: list[asyncio.BaseTransport] = []
    ports = [sh["port"] for sh in args.shards]
    tally = Tally(args.t0, args.t1, args.gap_s)
    try:
        for k, (port, shard) in enumerate(zip(ports, args.shards, strict=True)):
            ground = BareGround(k, range(shard["gcs_listen"], shard["gcs_listen"] + shard["n"]), tally)
            endpoint, _ = await loop.create_datagram_endpoint(functools.partial(_same, ground),
                                                              local_addr=("127.0.0.1", port))
            grounds.append(ground)
            transports.append(endpoint)
        async with asyncio.TaskGroup() as tg:
            hbs = [tg.create_task(g.heartbeats(), name=f"bare-heartbeats-{k}") for k, g in enumerate(grounds)]
            await sleep_until(args.t0)
            drops0 = socket_drops(ports)
            cpu0, _ = process_usage()
            for g in grounds:
                g.counting = True
            end: dict[str, Any] = {}

            def window_end() -> None:
                for g in grounds:
                    g.counting = False
                end["cpu"], end["rss"] = process_usage()
                end["drops"] = socket_drops(ports)

            rtts, timeouts = await command_loop(
                args,
                lambda: [(k, sysid) for k, g in enumerate(grounds) for sysid in g.addr],
                lambda key: grounds[key[0]].request(key[1]),
                window_end,
            )
            await tally.drain()
            for hb in hbs:
                hb.cancel()
    finally:
        for open_endpoint in transports:
            open_endpoint.close()
    return {
        "vehicles_seen": sum(len(g.state) for g in grounds),
        "received": sum(g.received for g in grounds),
        "datagrams": sum(g.datagrams for g in grounds),
        "out_datagrams": sum(g.out_datagrams for g in grounds),
        "drops": drops_between(drops0, end["drops"]),
        "rtts": rtts,
        "timeouts": timeouts,
        "cpu_s": end["cpu"] - cpu0,
        "rss": end["rss"],
        "rss_base": rss0,
        "delivered": tally.delivered(),
        "early": tally.early,
    }


async def command_loop(
    args: argparse.Namespace, targets: Callable[[], list[Key]], request: Callable[[Key], Awaitable[float]],
    on_window_end: Callable[[], None],
) -> tuple[list[float], int]:
    """REQUEST_MESSAGE round-robin at args.cmd_rate per second until t1, one outstanding per vehicle.

    `on_window_end` runs at t1, before the commands still in flight are waited for.
    """
    rtts: list[float] = []
    timeouts = 0
    busy: set[Key] = set()

    async def one(key: Key) -> None:
        nonlocal timeouts
        busy.add(key)
        try:
            rtts.append(await request(key))
        except Exception:  # a timeout or a refused command: no round trip
            timeouts += 1
        finally:
            busy.discard(key)

    period = 1.0 / args.cmd_rate
    k = 0
    async with asyncio.TaskGroup() as tg:
        next_at = time.monotonic()
        while time.time() < args.t1:
            keys = sorted(targets())
            if keys:
                key = keys[k % len(keys)]
                k += 1
                if key not in busy:
                    tg.create_task(one(key), name=f"cmd-{key[0]}-{key[1]}")
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        on_window_end()
    return rtts, timeouts


# --- ground side 2: the vehicles MAVSDK backend ---------------------------------------------------


def count_at_the_application(tally: Tally, shards: list[dict[str, int]]) -> None:
    """Count, in this process only, what reaches the vehicles backend: the datagrams its own socket
    reads and hands to MAVSDK (frames per vehicle), and the HEARTBEAT / MISSION_CURRENT messages
    MAVSDK hands to its callbacks (per tracker, i.e. per vehicle). Wraps the backend's methods; must
    run before the fleets are made (the callbacks are bound when a vehicle is discovered)."""
    from vehicles.mavsdk_backend._telemetry import Tracker
    from vehicles.mavsdk_backend._transport import RawUdpLink

    by_port = {sh["port"]: (k, sh["gcs_listen"], sh["n"]) for k, sh in enumerate(shards)}
    shard_of: dict[int, tuple[int, int, int] | None] = {}  # id(link) -> (shard, first source port, n)
    received = RawUdpLink.datagram_received

    def datagram_received(self: RawUdpLink, data: bytes, addr: tuple[str | Any, int]) -> None:
        if id(self) in shard_of:
            shard = shard_of[id(self)]
        else:
            local = self.local_address
            shard = shard_of[id(self)] = None if local is None else by_port.get(local[1])
        if shard is not None and 0 <= addr[1] - shard[1] < shard[2]:
            tally.add_msgs((shard[0], addr[1] - shard[1] + 1), count_frames(data))
        received(self, data, addr)

    RawUdpLink.datagram_received = datagram_received  # type: ignore[method-assign]
    for name in ("_heartbeat_cb", "_mission_current_cb"):
        callback = getattr(Tracker, name)

        def counted(self: Tracker, msg: Any, user_data: Any, _callback: Any = callback) -> None:
            tally.add_callbacks(self)
            _callback(self, msg, user_data)

        setattr(Tracker, name, counted)


async def run_vehicles(args: argparse.Namespace) -> dict[str, Any]:
    from vehicles.errors import VehicleError
    from vehicles.mavsdk_backend import MavsdkFleet

    _, rss0 = process_usage()
    ports = [sh["port"] for sh in args.shards]
    tally = Tally(args.t0, args.t1, args.gap_s)
    count_at_the_application(tally, args.shards)
    async with contextlib.AsyncExitStack() as stack:
        fleets = [
            await stack.enter_async_context(MavsdkFleet(f"udpin://127.0.0.1:{port}", link_timeout_s=5.0))
            for port in ports
        ]
        await sleep_until(args.t0)
        drops0 = socket_drops(ports)
        cpu0, _ = process_usage()
        links0 = [f.link_counters() or (0, 0) for f in fleets]

        async def request(key: Key) -> float:
            vehicle = fleets[key[0]].vehicles[key[1]]
            t = time.perf_counter()
            try:
                await vehicle.request_message(MSG_AUTOPILOT_VERSION, timeout_s=CMD_TIMEOUT_S)
            except VehicleError as exc:
                raise TimeoutError(str(exc)) from exc
            return time.perf_counter() - t

        end: dict[str, Any] = {}

        def window_end() -> None:
            end["cpu"], end["rss"] = process_usage()
            end["drops"] = socket_drops(ports)
            end["tracked"] = sum(1 for f in fleets for v in f.vehicles.values() if v.state.link_alive)
            end["seen"] = sum(len(f.vehicles) for f in fleets)
            links1 = [f.link_counters() or (0, 0) for f in fleets]
            end["in"] = sum(b[0] - a[0] for a, b in zip(links0, links1, strict=True))
            end["out"] = sum(b[1] - a[1] for a, b in zip(links0, links1, strict=True))
            end["own_socket"] = all(f.link_counters() is not None for f in fleets)
            end["msgs"] = tally.in_window

        rtts, timeouts = await command_loop(
            args, lambda: [(k, sysid) for k, f in enumerate(fleets) for sysid in f.vehicles], request, window_end
        )
        await tally.drain()
        # trackers -> (shard, system id); the backend keeps its tracker private
        callbacks = {(k, sysid): tally.callbacks.get(v._tracker, 0)
                     for k, f in enumerate(fleets) for sysid, v in f.vehicles.items()}
    return {
        "vehicles_seen": end["seen"],
        "vehicles_tracked": end["tracked"],
        "received": end["msgs"],  # frames read by the backend's socket in the window, handed to MAVSDK
        "datagrams": end["in"] if end["own_socket"] else None,
        "out_datagrams": end["out"] if end["own_socket"] else None,
        "drops": drops_between(drops0, end["drops"]),
        "rtts": rtts,
        "timeouts": timeouts,
        "cpu_s": end["cpu"] - cpu0,
        "rss": end["rss"],
        "rss_base": rss0,
        "delivered": tally.delivered(callbacks),
        "early": tally.early,
    }


# --- the simulator side ----------------------------------------------------------------------------


class GcsGate:
    """One vehicle's GCS link as the bench sees it: what it put on the wire in [t0, t1), counted; silent
    in [t0 - gap, t0) and from t1 on. Sits in front of `Link.flush` (an instance attribute), so the
    streams keep their schedule and build their packets as always; outside the window they are dropped
    unsent (the bench's edge of the window), nothing else changes."""

    def __init__(self, link: Any, t0: float, t1: float, gap_s: float) -> None:
        self.link = link
        self.sent = 0
        self.sent_callback_types = 0
        self._flush = link.flush
        self._quiet_from, self._t0, self._t1 = t0 - gap_s, t0, t1
        link.flush = self.flush

    def flush(self) -> None:
        link = self.link
        now = time.time()
        if now < self._quiet_from:
            self._flush()
        elif now < self._t0 or now >= self._t1:
            link._out = []  # the queued packets: dropped, never sent
        else:
            out = link._out
            before = link.sent_packets
            self._flush()
            sent = link.sent_packets - before  # 0 when the link could not send (no fault injected here)
            if sent:
                self.sent += sent
                self.sent_callback_types += sum(1 for frame in out if frame_msgid(frame) in CALLBACK_TYPES)


async def run_sim(args: argparse.Namespace) -> dict[str, Any]:
    from sitl import SimFleet, SimPorts, VehicleSpec

    gates: list[tuple[int, int, GcsGate]] = []  # (shard, system id, gate)
    async with contextlib.AsyncExitStack() as stack:
        fleets = []
        first = 0
        for shard in args.shards:
            specs = []
            for i in range(shard["n"]):
                # a grid 20 m apart near Helsinki; one rover in five
                g = first + i
                lat = 60.16 + (g // 25) * 0.00018
                lon = 24.93 + (g % 25) * 0.00036
                specs.append(VehicleSpec("rover" if g % 5 == 4 else "quad", lat, lon, 12.0, instance=i))
            first += shard["n"]
            ports = SimPorts(
                target_host="127.0.0.1",
                gcs_target_port=shard["port"],
                api_target_base=shard["api_target"],
                gcs_listen_base=shard["gcs_listen"],
                api_listen_base=shard["api_listen"],
                bind_host="127.0.0.1",
            )
            fleet = await stack.enter_async_context(
                SimFleet(specs, ports=ports, speed_factor=1.0, stream_profile="px4")
            )
            fleets.append(fleet)
            for vehicle in fleet.vehicles:
                if vehicle.gcs_link is not None:
                    gates.append((len(fleets) - 1, vehicle.sysid,
                                  GcsGate(vehicle.gcs_link, args.t0, args.t1, args.gap_s)))
                # The bench measures the GCS link: the API (onboard) link, ~400 messages/s per vehicle to a
                # port nobody reads, is stopped as a client would stop it (SET_MESSAGE_INTERVAL -1 per stream).
                if vehicle.api_link is not None:
                    for stream in vehicle.messages.values():
                        vehicle.set_message_interval(vehicle.api_link, stream.msg_id, -1)
        await sleep_until(args.t0)
        stats0 = [f.stats() for f in fleets]
        await sleep_until(args.t1)
        stats1 = [f.stats() for f in fleets]
        # past t1 the gates send nothing: every count is final
    sim_s = min(b.sim_time_s - a.sim_time_s for a, b in zip(stats0, stats1, strict=True))
    wall_s = stats1[0].wall_time_s - stats0[0].wall_time_s
    cpu_s = stats1[0].cpu_time_s - stats0[0].cpu_time_s  # process CPU time: the same for every fleet
    return {"sent": sum(g.sent for _, _, g in gates),
            "per_vehicle": [[k, sysid, g.sent, g.sent_callback_types] for k, sysid, g in gates],
            "achieved_speed": sim_s / wall_s if wall_s > 0 else 0.0,
            "sim_cpu_pct": 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0}


# --- driver ------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """Messages the simulator sent in the window vs those that reached the ground side's application."""

    sent: int = 0
    delivered: int = 0
    cb_sent: int = 0  # HEARTBEAT + MISSION_CURRENT
    cb_delivered: int = 0
    vehicles_with_loss: int = 0
    worst_vehicle_loss_pct: float = 0.0
    unexpected: int = 0  # counted at the ground for a vehicle the simulator did not report (should be 0)

    @staticmethod
    def loss_pct(sent: int, delivered: int) -> float | None:
        return None if sent <= 0 else 100.0 * (sent - delivered) / sent

    @classmethod
    def of(cls, per_vehicle_sent: list[list[int]], per_vehicle_delivered: list[list[int]]) -> Delivery:
        got = {(k, sysid): (msgs, cbs) for k, sysid, msgs, cbs in per_vehicle_delivered}
        out = cls()
        for k, sysid, sent, cb_sent in per_vehicle_sent:
            msgs, cbs = got.pop((k, sysid), (0, 0))
            out.sent += sent
            out.delivered += msgs
            out.cb_sent += cb_sent
            out.cb_delivered += cbs
            if msgs < sent or cbs < cb_sent:
                out.vehicles_with_loss += 1
            loss = cls.loss_pct(sent, msgs)
            if loss is not None:
                out.worst_vehicle_loss_pct = max(out.worst_vehicle_loss_pct, loss)
        out.unexpected = sum(msgs for msgs, _ in got.values())
        return out


@dataclass
class Row:
    n: int
    peer: str
    sent: int | None
    received: float | None
    drops: int | None
    delivery: Delivery | None
    early: int | None
    seen: int
    tracked: int | None
    datagrams_in: int | None
    datagrams_out: int | None
    rtts: list[float]
    timeouts: int
    cpu_pct: float
    rss_mb: float
    rss_base_mb: float
    window_s: float
    sim_speed: float | None = None
    sim_cpu_pct: float | None = None
    ground_rc: int | None = None
    note: str = ""


def _child(role: str, args: argparse.Namespace, extra: list[str], core: int | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.fleet_scale", role, *extra]
    if core is not None:
        cmd += ["--core", str(core)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str], deadline: float) -> tuple[dict[str, Any] | None, str]:
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        return None, f"timed out; stderr: {_tail(err)}"
    finally:
        _kill(proc)
    if proc.returncode != 0:
        return None, f"exit {proc.returncode}; stderr: {_tail(err)}"
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line), ""
    return None, f"exit {proc.returncode}, no result; stderr: {_tail(err)}"


def _tail(err: str) -> str:
    # the last distinct lines (a dying ground side repeats its last complaint hundreds of times)
    lines = list(dict.fromkeys(line for line in err.strip().splitlines() if line.strip()))
    return " | ".join(lines[-6:])[-600:]


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_one(n: int, peer: str, args: argparse.Namespace) -> Row:
    # One MAVLink network addresses at most 254 vehicles (system ids 1..254; 255 is the ground station),
    # so a larger fleet is split into shards of SHARD_SIZE, each sending to its own ground port.
    shards: list[dict[str, int]] = []
    avoid: set[int] = set()
    left = n
    while left > 0:
        size = min(args.shard_size, left)
        left -= size
        shard = {"n": size}
        for name, count in (("port", 1), ("gcs_listen", size), ("api_listen", size), ("api_target", size)):
            base = free_udp_block(count, avoid)
            avoid |= set(range(base, base + count))
            shard[name] = base
        shards.append(shard)
    startup_s = args.startup_s + n / 100.0
    t0 = time.time() + startup_s
    t1 = t0 + args.seconds
    gap_s = getattr(args, "gap_s", GAP_S)
    common = ["--shards", json.dumps(shards), "--t0", repr(t0), "--t1", repr(t1), "--cmd-rate", str(args.cmd_rate),
              "--gap-s", repr(gap_s)]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    ground_core = cores[0] if cores and not args.no_pin else None
    sim_core = cores[-1] if len(cores) > 1 and not args.no_pin else None
    ground = _child("_ground", args, [*common, "--peer", peer], ground_core)
    sim = _child("_sim", args, common, sim_core)
    deadline = t1 + max(CMD_TIMEOUT_S, DRAIN_MAX_S) + 15.0
    try:
        sim_out, sim_err = _finish(sim, deadline)
        ground_out, ground_err = _finish(ground, deadline)
    finally:
        _kill(sim)
        _kill(ground)
    note = "; ".join(x for x in (sim_err and f"sim: {sim_err}", ground_err and f"ground: {ground_err}") if x)
    g = ground_out or {}
    sent = None if sim_out is None else int(sim_out["sent"])
    tracked = g.get("vehicles_tracked")
    delivery = None
    if sim_out is not None and "delivered" in g:
        delivery = Delivery.of(sim_out["per_vehicle"], g["delivered"])
    return Row(
        n=n,
        peer=peer,
        sent=sent,
        received=g.get("received"),
        drops=g.get("drops"),
        delivery=delivery,
        early=g.get("early"),
        seen=int(g.get("vehicles_seen", 0)),
        tracked=None if tracked is None else int(tracked),
        datagrams_in=g.get("datagrams"),
        datagrams_out=g.get("out_datagrams"),
        rtts=list(g.get("rtts", [])),
        timeouts=int(g.get("timeouts", 0)),
        cpu_pct=100.0 * float(g.get("cpu_s", 0.0)) / args.seconds,
        rss_mb=float(g.get("rss", 0)) / 2**20,
        rss_base_mb=float(g.get("rss_base", 0)) / 2**20,
        window_s=args.seconds,
        sim_speed=None if sim_out is None else float(sim_out["achieved_speed"]),
        sim_cpu_pct=None if sim_out is None else float(sim_out["sim_cpu_pct"]),
        ground_rc=ground.returncode,
        note=note,
    )


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _pct_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(rows: list[Row], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, Console().width))
    window = f"{args.seconds:.0f} s window each"
    table = Table(title=f"Fleet scale: delivery at the application, ground side vs N simulated vehicles ({window})")
    for col in ("N", "ground side", "seen / live", "sent msg/s", "msgs sent", "delivered", "loss %",
                "HB+MC sent", "delivered", "loss %", "vehicles w/ loss (worst %)", "kernel drops"):
        table.add_column(col, justify="left" if col == "ground side" else "right")
    for r in rows:
        d = r.delivery
        failed = not r.seen and r.note
        table.add_row(
            str(r.n), r.peer + (" [red](died)[/red]" if failed else ""),
            f"{r.seen} / {'-' if r.tracked is None else r.tracked}",
            "-" if r.sent is None else f"{r.sent / r.window_s:,.0f}",
            "-" if d is None else f"{d.sent:,}",
            "-" if d is None else f"{d.delivered:,}",
            "-" if d is None else _pct_cell(Delivery.loss_pct(d.sent, d.delivered)),
            "-" if d is None else f"{d.cb_sent:,}",
            "-" if d is None else f"{d.cb_delivered:,}",
            "-" if d is None else _pct_cell(Delivery.loss_pct(d.cb_sent, d.cb_delivered)),
            "-" if d is None else f"{d.vehicles_with_loss} ({d.worst_vehicle_loss_pct:.2f})",
            "-" if r.drops is None else str(r.drops),
        )
    console.print(table)
    console.print(
        "Counted at the application, per vehicle, over the same window: sent = messages the simulator's GCS "
        "links put on the wire; delivered = for bare, decoded by pymavlink and handed to its handler; for "
        "vehicles, read by the backend's socket and handed to MAVSDK (parsed in C++). HB+MC = HEARTBEAT + "
        "MISSION_CURRENT, the stream messages both sides hand one by one to their code (vehicles: its MAVSDK "
        "callbacks; its other telemetry is sampled from MAVSDK's cache). loss % = (sent - delivered) / sent. "
        "kernel drops: the ground sockets' /proc/net/udp drop counter, a diagnostic only."
    )

    perf = Table(title=f"Fleet scale: load ({window}, {args.cmd_rate:g} commands/s)")
    for col in ("N", "ground side", "recv msg/s", "dgram/s in / out", "RTT ms p50 / p95 / max", "cmd ok/fail",
                "CPU % 1 core", "RSS MB", "RSS/vehicle MB", "sim speed / CPU %"):
        perf.add_column(col, justify="left" if col == "ground side" else "right")
    for r in rows:
        dgrams = "-"
        if r.datagrams_in is not None and r.datagrams_out is not None:
            dgrams = f"{r.datagrams_in / r.window_s:,.0f} / {r.datagrams_out / r.window_s:,.0f}"
        p50, p95 = _pct(r.rtts, 0.5), _pct(r.rtts, 0.95)
        perf.add_row(
            str(r.n), r.peer,
            "-" if r.received is None else f"{r.received / r.window_s:,.0f}",
            dgrams,
            "-" if p50 is None or p95 is None else f"{p50 * 1e3:.1f} / {p95 * 1e3:.1f} / {max(r.rtts) * 1e3:.1f}",
            f"{len(r.rtts)}/{r.timeouts}",
            f"{r.cpu_pct:.0f}",
            f"{r.rss_mb:.0f}",
            f"{r.rss_mb / max(r.n, 1):.2f} (+{(r.rss_mb - r.rss_base_mb) / max(r.n, 1):.2f})",
            "-" if r.sim_speed is None else f"{r.sim_speed:.2f} / {r.sim_cpu_pct:.0f}",
        )
    console.print(perf)
    console.print(
        "recv msg/s: messages that reached the application in the window (as counted above). dgram/s out: what "
        "the ground side sends (heartbeats, commands, and for MAVSDK whatever it sends). seen / live: vehicles "
        "discovered / with a live link at the end. RSS/vehicle: total RSS / N (in brackets: growth since the "
        "process started / N). sim speed < 1: the simulator could not keep up (fewer messages offered than "
        "PX4's nominal rates). The vehicles side's counting (frames per datagram, per callback) runs in its "
        "process and is included in its CPU figure."
    )
    console.print("Targets: loss < 1 %, p95 < 100 ms, RSS/vehicle < 5 MB at N = 500 on one core.")
    for r in rows:
        if r.early:
            console.print(f"[yellow]N={r.n} {r.peer}: {r.early} messages arrived in the silent gap before t0 "
                          "(a backlog longer than gap/2): delivered is too high by up to that much[/yellow]")
        if r.delivery is not None and r.delivery.unexpected:
            console.print(f"[yellow]N={r.n} {r.peer}: {r.delivery.unexpected} messages from vehicles the "
                          "simulator did not report[/yellow]")
        if r.note:
            console.print(f"[yellow]N={r.n} {r.peer}: {r.note}[/yellow]")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_ground", "_sim"):
        return child_main(argv[0], argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.fleet_scale", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    p.add_argument("--peers", nargs="+", default=["bare", "vehicles"], choices=["bare", "vehicles"])
    p.add_argument("--seconds", type=float, default=8.0, help="measurement window per run")
    p.add_argument("--startup-s", type=float, default=4.0, help="startup allowance (+ N/100 s)")
    p.add_argument("--cmd-rate", type=float, default=20.0, help="commands per second, round-robin")
    p.add_argument("--no-pin", action="store_true", help="do not pin the ground process to one core")
    p.add_argument("--shard-size", type=int, default=SHARD_SIZE,
                   help="vehicles per ground port (at most 254: MAVLink system ids)")
    p.add_argument("--gap-s", type=float, default=GAP_S,
                   help="GCS links silent this long before the window, so its start is exact")
    args = p.parse_args(argv)
    if not 1 <= args.shard_size <= 254:
        p.error("--shard-size must be 1..254 (MAVLink system ids)")
    if not 0 <= args.gap_s < args.startup_s / 2:
        p.error("--gap-s must be at least 0 and under half of --startup-s (vehicles are discovered before it)")
    rows = []
    for n in args.sizes:
        for peer in args.peers:
            print(f"N={n} {peer} ...", file=sys.stderr, flush=True)
            rows.append(run_one(n, peer, args))
    render(rows, args)
    return 0


def child_main(role: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--shards", type=json.loads, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t1", type=float, required=True)
    p.add_argument("--cmd-rate", type=float, default=20.0)
    p.add_argument("--peer", default="bare")
    p.add_argument("--gap-s", type=float, default=GAP_S)
    p.add_argument("--core", type=int)
    args = p.parse_args(argv)
    pin_to_core(args.core)
    if role == "_sim":
        result = asyncio.run(run_sim(args))
    elif args.peer == "bare":
        result = asyncio.run(run_bare(args))
    else:
        result = asyncio.run(run_vehicles(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
