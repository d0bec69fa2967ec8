"""Vehicle-state fan-out: 500 simulated quads streaming at PX4's GCS-link rates, published on MQTT.

The simulator (`sitl.SimFleet`, speed 1, stream profile "gcs": the GCS link's messages at PX4's
"Normal" mavlink rates, ~20 messages/s per vehicle) runs in a child process pinned to one core; its
quads stand on a grid 15 m apart around a home in Helsinki, and all of them take off and cruise away
(the simulator's own API: arm, takeoff, reposition), so every position changes all the time. One
MAVLink network addresses at most 254 vehicles (system ids), so 500 vehicles are two shards of 250,
each sending to its own ground UDP port. The simulated API (onboard) links, ~80 messages/s per vehicle
to ports nobody reads here, are stopped as a client would stop them (SET_MESSAGE_INTERVAL -1): with
them the simulator cannot keep 500 vehicles at 1x on one core (--api-streams keeps them, and the
table then shows its lag).

The ground side, in another child process pinned to the other core, is one of:
  - "fleetctl": the service's vehicle-state path: one `vehicles.mavsdk_backend.MavsdkFleet` per shard,
    one `fleetctl.telemetry.VehicleStatePublisher` per fleet (1 Hz per vehicle at most, only what
    changed), on one `fleetctl.bus.Bus` to Mosquitto (127.0.0.1:1883); a store (SQLite, in a temporary
    folder) for the link events, as in the service. The whole service is not used: its one MAVLink
    endpoint serves one network of at most 254 vehicles;
  - "bare" (the peer): a bare asyncio + pymavlink receiver keeping each vehicle's latest state, and a
    1 Hz aiomqtt loop publishing every vehicle that moved, same topic pattern, QoS 0, retained, a
    payload of the same fields: the least a Python process does for this job.
A subscriber in this process counts what arrives on fleet/<site>/vehicles/+/state.

Measured over the same wall-clock window (default 20 s, after start-up: discovery, take-off): MQTT
messages/s, vehicles heard on MQTT, per-vehicle rate and the shortest gap between two messages of one
vehicle (coalescing: at most 1 Hz each, so ~500/s in all), the ground process's CPU (% of one core),
MAVLink datagrams/s it read, Mosquitto's CPU, and the simulator's achieved speed, lag events and
seconds given up (an honest 1x needs lag 0). Nothing is asserted.

Run from the repository root:  python -m bench.fanout [--vehicles 500] [--seconds 20] [--grounds fleetctl bare]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._measure import (
    NODELAY,
    SHARED_MACHINE_NOTE,
    Broker,
    CpuSampler,
    clear_retained,
    forget_client,
    percentile,
    pin,
    stop,
    system_broker,
    usable_cores,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = REPO_ROOT / "sitl" / "worlds" / "helsinki"
HOME = (60.171614, 24.944311, 12.0)  # the Helsinki site's origin
SHARD_SIZE = 250  # system ids 1..254 per MAVLink network
GRID_M = 15.0
GRID_COLUMNS = 25
RATE_HZ = 1.0  # the service's default vehicle_state_hz
WARMUP_S = 10.0  # from both sides ready to the window: every vehicle discovered, every quad off the ground
GRACE_S = 20.0  # after the window: children report, or are killed


# --- ports ----------------------------------------------------------------------------------------


def plan_shards(n: int, shard_size: int) -> list[dict[str, int]]:
    """Per shard: its vehicles, and free UDP blocks for the ground port and the vehicles' links."""
    from sitl.ports import free_udp_block

    shards: list[dict[str, int]] = []
    taken: set[int] = set()
    first = 0
    while first < n:
        size = min(shard_size, n - first)
        shard = {"n": size, "first": first}
        for name, count in (("port", 1), ("gcs_listen", size), ("api_listen", size), ("api_target", size)):
            base = free_udp_block(count, avoid=taken)
            taken |= set(range(base, base + count))
            shard[name] = base
        shards.append(shard)
        first += size
    return shards


async def window_of(args: argparse.Namespace) -> None:
    """A child says it is ready, then learns the measurement window from the driver (a JSON line
    on stdin): the window starts only once both children have started, however slow that was."""
    print("ready", flush=True)
    window = json.loads(await asyncio.to_thread(sys.stdin.readline))
    args.t0, args.t1 = float(window["t0"]), float(window["t1"])


def thread_cpu() -> tuple[float, float]:
    """CPU seconds of this process: its main thread (the asyncio loop), and every other thread
    (MAVSDK's C++ threads, the store's worker, asyncio's executor)."""
    import psutil

    main = other = 0.0
    for t in psutil.Process().threads():
        if t.id == os.getpid():
            main += t.user_time + t.system_time
        else:
            other += t.user_time + t.system_time
    return main, other


async def sleep_until(t_wall: float) -> None:
    delay = t_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


# --- the simulator (child) ------------------------------------------------------------------------


def _fly(v: Any, g: int) -> None:
    """Keep a quad moving all run: take off to 15 m, then cruise 3 km away on its own heading."""
    from sitl.modes import Mode

    v.arm("Armed by bench\t")
    e, n, _ = v.position_enu
    far_e, far_n = e + 3000.0 * math.cos(g), n + 3000.0 * math.sin(g)
    v.navigator.set_takeoff(e, n, 15.0)
    v.set_mode(Mode.TAKEOFF)
    v.schedule(8.0, lambda: v.navigator.reposition(far_e, far_n, 15.0, -1.0))


async def sim_main(args: argparse.Namespace) -> dict[str, Any]:
    from planner.geo import offset_wgs84
    from sitl import SimFleet, SimPorts, VehicleSpec

    async with contextlib.AsyncExitStack() as stack:
        fleets = []
        for shard in args.shards:
            specs = []
            for i in range(shard["n"]):
                g = shard["first"] + i
                north = GRID_M * (g // GRID_COLUMNS) - GRID_M * 10
                east = GRID_M * (g % GRID_COLUMNS) - GRID_M * GRID_COLUMNS / 2
                lat, lon = offset_wgs84(HOME[0], HOME[1], north, east)
                specs.append(VehicleSpec("quad", lat, lon, HOME[2], instance=i))
            ports = SimPorts(target_host="127.0.0.1", gcs_target_port=shard["port"],
                             api_target_base=shard["api_target"], gcs_listen_base=shard["gcs_listen"],
                             api_listen_base=shard["api_listen"], bind_host="127.0.0.1")
            # no data-link failsafe: PX4's default NAV_DLL_ACT is 0 (the bare peer sends no heartbeat)
            fleet = await stack.enter_async_context(
                SimFleet(specs, ports=ports, speed_factor=1.0, stream_profile="gcs", datalink_timeout_s=None))
            if not args.api_streams:
                for vehicle in fleet.vehicles:
                    if vehicle.api_link is not None:
                        for stream in vehicle.messages.values():
                            vehicle.set_message_interval(vehicle.api_link, stream.msg_id, -1)
            fleets.append(fleet)
        for shard, fleet in zip(args.shards, fleets, strict=True):
            for i, vehicle in enumerate(fleet.vehicles):
                _fly(vehicle, shard["first"] + i)
        lag_at_ready = sum(f.stats().lag_events for f in fleets)
        await window_of(args)
        await sleep_until(args.t0)
        s0, cpu0, wall0 = [f.stats() for f in fleets], time.process_time(), time.monotonic()
        airborne0 = sum(v.airborne for f in fleets for v in f.vehicles)
        await sleep_until(args.t1)
        s1, cpu1, wall1 = [f.stats() for f in fleets], time.process_time(), time.monotonic()
        airborne1 = sum(v.airborne for f in fleets for v in f.vehicles)
        gcs_sent = sum(v.gcs_link.sent_packets for f in fleets for v in f.vehicles if v.gcs_link is not None)
    wall = wall1 - wall0
    return {
        "speed": min((b.sim_time_s - a.sim_time_s) / wall for a, b in zip(s0, s1, strict=True)),
        "lag_events": sum(b.lag_events - a.lag_events for a, b in zip(s0, s1, strict=True)),
        "behind_s": max(b.behind_s - a.behind_s for a, b in zip(s0, s1, strict=True)),
        "lag_events_before": sum(a.lag_events for a in s0) - lag_at_ready,
        "lag_events_startup": lag_at_ready,
        "cpu_pct": 100.0 * (cpu1 - cpu0) / wall,
        "airborne": [airborne0, airborne1],
        "vehicles": sum(len(f.vehicles) for f in fleets),
        "gcs_packets_total": gcs_sent,
    }


# --- ground side 1: fleetctl's vehicle-state path (child) -----------------------------------------


async def fleetctl_ground(args: argparse.Namespace) -> dict[str, Any]:
    from fleetctl.bus import BrokerSettings, Bus
    from fleetctl.clock import WallClock
    from fleetctl.fleet_view import FleetMember, by_sysid
    from fleetctl.store import Store
    from fleetctl.telemetry import VehicleStatePublisher
    from planner.site import load_site
    from vehicles.mavsdk_backend import MavsdkFleet

    site = load_site(SITE_DIR)
    model = site.vehicle_model("quad-x4")
    depot = next(iter(site.depots))
    clock = WallClock()
    broker = BrokerSettings(url=args.broker_url, client_id=args.client_id)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        async with (Store.open(f"sqlite+aiosqlite:///{Path(folder) / 'fleet.db'}", clock=clock) as store,
                    Bus(broker, args.site_id) as bus, contextlib.AsyncExitStack() as stack,
                    asyncio.TaskGroup() as tasks):
            publishers: list[VehicleStatePublisher] = []
            fleets: list[MavsdkFleet] = []
            running: list[asyncio.Task[None]] = []
            for shard in args.shards:
                members = {f"quad-{g + 1:04d}": FleetMember(f"quad-{g + 1:04d}", g - shard["first"] + 1, model, depot)
                           for g in range(shard["first"], shard["first"] + shard["n"])}
                fleet = await stack.enter_async_context(
                    MavsdkFleet(f"udpin://127.0.0.1:{shard['port']}", fleet_config=by_sysid(members.values())))
                states = VehicleStatePublisher(bus, store, fleet, members, clock, lambda _v: None, rate_hz=RATE_HZ)
                running.append(tasks.create_task(states.run(), name=f"vehicle-states-{shard['first']}"))
                running.append(tasks.create_task(states.log_events(), name=f"vehicle-events-{shard['first']}"))
                publishers.append(states)
                fleets.append(fleet)

            await window_of(args)

            def counters() -> tuple[int, int, int]:
                links = [f.link_counters() or (0, 0) for f in fleets]
                return sum(p.published for p in publishers), bus.stats.dropped, sum(i for i, _ in links)

            await sleep_until(args.t0)
            published0, dropped0, datagrams0 = counters()
            seen0 = sum(len(f.vehicles) for f in fleets)
            threads0 = thread_cpu()
            await sleep_until(args.t1)
            threads1 = thread_cpu()
            published1, dropped1, datagrams1 = counters()
            span = args.t1 - args.t0
            result = {
                "main_pct": 100.0 * (threads1[0] - threads0[0]) / span,
                "other_pct": 100.0 * (threads1[1] - threads0[1]) / span,
                "published": published1 - published0, "dropped": dropped1 - dropped0,
                "datagrams": datagrams1 - datagrams0, "seen": [seen0, sum(len(f.vehicles) for f in fleets)],
                "alive": sum(1 for f in fleets for v in f.vehicles.values() if v.state.link_alive),
            }
            for task in running:  # the window is over
                task.cancel()
    return result


# --- ground side 2: the bare peer (child) ---------------------------------------------------------


class BareReceiver(asyncio.DatagramProtocol):
    """Decodes every datagram with pymavlink, keeps what a vehicle-state message carries."""

    def __init__(self, shard: dict[str, int]) -> None:
        from pymavlink.dialects.v20 import common as mavlink2

        self.m = mavlink2
        self.mav = mavlink2.MAVLink(None)
        self.mav.robust_parsing = True
        self.first = shard["first"]
        self.sources = range(shard["gcs_listen"], shard["gcs_listen"] + shard["n"])
        self.datagrams = 0
        self.state: dict[str, dict[str, Any]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr[1] not in self.sources:
            return  # another program's packet on our port
        self.datagrams += 1
        try:
            msgs = self.mav.parse_buffer(data) or []
        except self.m.MAVError:
            return
        for msg in msgs:
            sysid = msg.get_srcSystem()
            if sysid == 0:
                continue
            vehicle_id = f"quad-{self.first + sysid:04d}"
            st = self.state.setdefault(vehicle_id, {"vehicle_id": vehicle_id, "kind": "drone"})
            kind = msg.get_type()
            if kind == "GLOBAL_POSITION_INT":
                st["lat_deg"], st["lon_deg"], st["alt_m"] = msg.lat * 1e-7, msg.lon * 1e-7, msg.relative_alt * 1e-3
            elif kind == "HEARTBEAT":
                st["mode"], st["armed"] = str(msg.custom_mode), bool(msg.base_mode & 0x80)
            elif kind == "SYS_STATUS":
                st["battery_percent"] = float(msg.battery_remaining)


def _moved(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    if old is None or "lat_deg" not in old or "lat_deg" not in new:
        return True
    north = (new["lat_deg"] - old["lat_deg"]) * 111_320.0
    east = (new["lon_deg"] - old["lon_deg"]) * 111_320.0 * math.cos(math.radians(new["lat_deg"]))
    return math.hypot(north, east, new["alt_m"] - old["alt_m"]) >= 1.0 or old.get("mode") != new.get("mode")


def _same(receiver: BareReceiver) -> BareReceiver:
    return receiver


async def bare_ground(args: argparse.Namespace) -> dict[str, Any]:
    import aiomqtt

    loop = asyncio.get_running_loop()
    receivers: list[BareReceiver] = []
    transports: list[asyncio.BaseTransport] = []
    published = 0
    ticks: list[tuple[float, int, int]] = []  # (wall time, published, datagrams) after each round
    try:
        for shard in args.shards:
            receiver = BareReceiver(shard)
            transport, _ = await loop.create_datagram_endpoint(functools.partial(_same, receiver),
                                                               local_addr=("127.0.0.1", shard["port"]))
            receivers.append(receiver)
            transports.append(transport)
        host, port = args.broker_url.removeprefix("mqtt://").rsplit(":", 1)
        async with aiomqtt.Client(host, int(port), identifier=args.client_id, socket_options=NODELAY) as client:
            client.pending_calls_threshold = sum(sh["n"] for sh in args.shards) + 10  # one round at once
            last: dict[str, dict[str, Any]] = {}
            window = asyncio.create_task(window_of(args))  # publishing starts at once, as the service's would
            began = time.monotonic()
            rounds = 0
            while not window.done() or time.time() < args.t1:
                rounds += 1  # on an absolute 1 Hz schedule: the least a 1 Hz publisher sends
                await asyncio.sleep(max(0.0, began + rounds / RATE_HZ - time.monotonic()))
                now = datetime.now(UTC).isoformat()
                sends = []
                for receiver in receivers:
                    for vehicle_id, state in receiver.state.items():
                        if _moved(last.get(vehicle_id), state):
                            body = {**state, "link_alive": True, "sortie_id": None, "at": now}
                            # QoS 0: aiomqtt returns once paho wrote it; a round's writes go out together
                            sends.append(client.publish(f"fleet/{args.site_id}/vehicles/{vehicle_id}/state",
                                                        json.dumps(body).encode(), qos=0, retain=True))
                            last[vehicle_id] = dict(state)
                await asyncio.gather(*sends)
                published += len(sends)
                ticks.append((time.time(), published, sum(r.datagrams for r in receivers)))
    finally:
        for endpoint in transports:
            endpoint.close()
    first = min(ticks, key=lambda t: abs(t[0] - args.t0)) if ticks else (0.0, 0, 0)
    last_tick = ticks[-1] if ticks else (0.0, 0, 0)
    seen = sum(len(r.state) for r in receivers)
    return {"published": last_tick[1] - first[1], "dropped": 0, "datagrams": last_tick[2] - first[2],
            "seen": [seen, seen],
            "alive": seen}


# --- the driver -----------------------------------------------------------------------------------


@dataclass
class Arrivals:
    """State messages as they reach a plain subscriber, per vehicle."""

    t0: float
    t1: float
    by_vehicle: dict[str, list[float]] = field(default_factory=dict)
    total: int = 0

    def add(self, vehicle_id: str, now: float) -> None:
        if self.t0 <= now < self.t1:
            self.by_vehicle.setdefault(vehicle_id, []).append(now)
            self.total += 1

    def gaps(self) -> list[float]:
        return [b - a for times in self.by_vehicle.values() for a, b in itertools.pairwise(times)]


@dataclass
class Row:
    ground: str
    vehicles: int
    window_s: float
    arrivals: Arrivals | None = None
    ground_out: dict[str, Any] | None = None
    sim_out: dict[str, Any] | None = None
    cpu: dict[str, float | None] = field(default_factory=dict)
    note: str = ""


def _child(role: str, extra: list[str], core: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "bench.fanout", role, *extra]
    return cmd + (["--core", str(core)] if core is not None else [])


@dataclass
class Child:
    proc: asyncio.subprocess.Process
    log: Path

    @classmethod
    async def start(cls, cmd: list[str], log: Path) -> Child:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        with log.open("wb") as err:  # a file, not a pipe: a chatty child must never block on it
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE,
                                                        stdout=subprocess.PIPE, stderr=err,
                                                        start_new_session=True)
        return cls(proc, log)

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = [x for x in self.log.read_text(errors="replace").splitlines() if x.strip()]
            return " | ".join(list(dict.fromkeys(lines))[-4:])[-500:]
        return ""

    async def ready(self, timeout_s: float) -> None:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"not ready after {timeout_s:.0f} s: {self._tail()}") from None
        if line.strip() != b"ready":
            raise RuntimeError(f"did not start (exit {self.proc.returncode}): {self._tail()}")

    async def send_window(self, t0: float, t1: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"t0": t0, "t1": t1}).encode() + b"\n")
        await self.proc.stdin.drain()

    async def result(self, deadline: float) -> tuple[dict[str, Any] | None, str]:
        assert self.proc.stdout is not None
        try:
            out = await asyncio.wait_for(self.proc.stdout.read(), max(1.0, deadline - time.time()))
            await asyncio.wait_for(self.proc.wait(), 5.0)
        except TimeoutError:
            await stop(self.proc)
            return None, f"timed out: {self._tail()}"
        for line in reversed(out.decode(errors="replace").splitlines()):
            if line.startswith("{"):
                return json.loads(line), ""
        return None, f"exit {self.proc.returncode}: {self._tail()}"


async def run_one(ground: str, args: argparse.Namespace, broker: Broker) -> Row:
    row = Row(ground, args.vehicles, args.seconds)
    shards = plan_shards(args.vehicles, args.shard_size)
    site_id = f"fan{uuid.uuid4().hex[:8]}"
    client_id = f"fleetctl-{site_id}"
    cores = usable_cores()
    ground_core = None if args.no_pin or not cores else cores[0]
    sim_core = None if args.no_pin or len(cores) < 2 else cores[-1]
    arrivals = Arrivals(math.inf, math.inf)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        async with broker.client(identifier=f"bench-fanout-{site_id}") as sub:
            # subscribed before anything is published: every message of the window is counted
            await sub.subscribe(f"fleet/{site_id}/vehicles/+/state", qos=0)

            async def listen() -> None:
                async for message in sub.messages:
                    if isinstance(message.payload, bytes | bytearray) and message.payload:
                        arrivals.add(str(message.topic).split("/")[3], time.perf_counter())

            listener = asyncio.create_task(listen(), name="state-listener")
            children: list[Child] = []
            try:
                shards_arg = ["--shards", json.dumps(shards)]
                # the ground side first: its ports are bound before the vehicles start sending
                children.append(await Child.start(
                    _child("_ground", [*shards_arg, "--kind", ground, "--broker-url", broker.url, "--site-id",
                                       site_id, "--client-id", client_id], ground_core), Path(folder) / "ground.log"))
                await children[0].ready(60.0)
                children.append(await Child.start(
                    _child("_sim", [*shards_arg, *(["--api-streams"] if args.api_streams else [])], sim_core),
                    Path(folder) / "sim.log"))
                await children[1].ready(120.0 + args.vehicles / 10.0)
                # both up: the window opens after discovery and take-off, whatever start-up took
                t0 = time.time() + args.warmup_s
                t1 = t0 + args.seconds
                arrivals.t0 = time.perf_counter() + args.warmup_s
                arrivals.t1 = arrivals.t0 + args.seconds
                for child in children:
                    await child.send_window(t0, t1)
                sampler = CpuSampler({"ground": children[0].proc.pid, "sim": children[1].proc.pid,
                                      "broker": broker.pid}, period_s=0.5)
                sampling = asyncio.create_task(sampler.run(), name="cpu-sampler")
                await sleep_until(t1 + 0.5)
                sampling.cancel()
                row.cpu = {name: sampler.share(name, arrivals.t0, arrivals.t1) for name in ("ground", "sim", "broker")}
                deadline = t1 + GRACE_S
                (row.sim_out, sim_err), (row.ground_out, ground_err) = await asyncio.gather(
                    children[1].result(deadline), children[0].result(deadline))
                row.note = "; ".join(x for x in (sim_err and f"sim: {sim_err}", ground_err and f"ground: {ground_err}")
                                     if x)
                row.arrivals = arrivals
            except RuntimeError as e:
                row.note = f"{'ground' if len(children) < 2 else 'sim'}: {e}"
            finally:
                listener.cancel()
                for child in children:
                    await stop(child.proc)
    await clear_retained(broker, (f"fleet/{site_id}/vehicles/quad-{g + 1:04d}/state" for g in range(args.vehicles)))
    await forget_client(broker, client_id)
    return row


def render(rows: Sequence[Row], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(180, Console().width))
    table = Table(title=f"Vehicle-state fan-out: {args.vehicles} simulated quads at 1x, stream profile \"gcs\", "
                        f"{args.seconds:g} s window")
    for col in ("ground side", "MQTT msg/s", "vehicles on MQTT", "per vehicle Hz max / median",
                "min gap s (p1)", "published / dropped", "MAVLink dgram/s in",
                "ground CPU % (loop + other threads)", "broker CPU %",
                "sim speed", "sim lag events / s lost", "sim CPU %", "airborne t0 / t1"):
        table.add_column(col, justify="left" if col == "ground side" else "right")
    for r in rows:
        a, g, s = r.arrivals, r.ground_out or {}, r.sim_out or {}
        rates = [len(t) / r.window_s for t in a.by_vehicle.values()] if a else []
        gaps = a.gaps() if a else []
        table.add_row(
            r.ground,
            "-" if a is None else f"{a.total / r.window_s:,.0f}",
            "-" if a is None else f"{len(a.by_vehicle)} / {r.vehicles}",
            "-" if not rates else f"{max(rates):.2f} / {percentile(rates, 0.5):.2f}",
            "-" if not gaps else f"{min(gaps):.3f} ({percentile(gaps, 0.01):.3f})",
            f"{g.get('published', '-')} / {g.get('dropped', '-')}",
            "-" if "datagrams" not in g else f"{g['datagrams'] / r.window_s:,.0f}",
            ("-" if r.cpu.get("ground") is None else f"{r.cpu['ground']:.0f}")
            + (f" ({g['main_pct']:.0f} + {g['other_pct']:.0f})" if "main_pct" in g else ""),
            "-" if r.cpu.get("broker") is None else f"{r.cpu['broker']:.0f}",
            "-" if "speed" not in s else f"{s['speed']:.3f}",
            "-" if "lag_events" not in s else f"{s['lag_events']} / {s['behind_s']:.2f}",
            "-" if "cpu_pct" not in s else f"{s['cpu_pct']:.0f}",
            "-" if "airborne" not in s else f"{s['airborne'][0]} / {s['airborne'][1]}",
        )
    console.print(table)
    console.print(
        "MQTT msg/s: vehicle states received by a plain subscriber in the window (QoS 0, as published). per "
        "vehicle Hz: its messages / window; min gap: the shortest time between two messages of one vehicle, "
        f"and the 1st percentile (coalescing to {RATE_HZ:g} Hz keeps it near 1 s; broker and subscriber jitter "
        "shave a little off). published / dropped: counted by the ground side in the window (dropped: QoS 0 "
        "not sent because the outbox was full or the link down). ground CPU: the ground process (MAVLink in, "
        "MQTT out), pinned to one core; in brackets for fleetctl: its asyncio thread, and its other threads "
        "(MAVSDK's C++ threads parsing the MAVLink). The simulator runs pinned to the other core. sim speed: simulated seconds per "
        "wall second in the window (1.000 with 0 lag events: PX4's rates honestly kept).")
    for r in rows:
        g = r.ground_out or {}
        if "seen" in g and g["seen"][0] < r.vehicles:
            console.print(f"[yellow]{r.ground}: only {g['seen'][0]} of {r.vehicles} vehicles discovered at the "
                          f"window's start ({g['seen'][1]} at its end)[/yellow]")
        if r.sim_out and (r.sim_out.get("lag_events_before") or r.sim_out.get("lag_events_startup")):
            console.print(f"{r.ground}: before the window the simulator fell behind "
                          f"{r.sim_out.get('lag_events_startup', 0)} time(s) while opening its vehicles (the "
                          f"loop is busy creating sockets) and {r.sim_out.get('lag_events_before', 0)} time(s) "
                          "during the warm-up; not counted")
        if r.note:
            console.print(f"[yellow]{r.ground}: {r.note}[/yellow]")
    if not args.api_streams:
        console.print("The simulated API (onboard) links are stopped (nobody reads them here); --api-streams "
                      "keeps them (~80 more messages/s per vehicle, to unread ports).")
    console.print(SHARED_MACHINE_NOTE)


async def main_async(args: argparse.Namespace) -> None:
    broker = system_broker()
    rows = []
    for ground in args.grounds:
        print(f"{ground} ...", file=sys.stderr, flush=True)
        rows.append(await run_one(ground, args, broker))
    render(rows, args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_sim", "_ground"):
        return child_main(argv[0], argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--vehicles", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    p.add_argument("--warmup-s", type=float, default=WARMUP_S,
                   help="from both sides ready to the window: discovery, take-off")
    p.add_argument("--grounds", nargs="+", default=["fleetctl", "bare"], choices=["fleetctl", "bare"])
    p.add_argument("--shard-size", type=int, default=SHARD_SIZE, help="vehicles per MAVLink network (<= 254)")
    p.add_argument("--api-streams", action="store_true", help="keep the simulated API links streaming")
    p.add_argument("--no-pin", action="store_true", help="do not pin the ground side and simulator to cores")
    args = p.parse_args(argv)
    if not 1 <= args.shard_size <= 254:
        p.error("--shard-size must be 1..254 (MAVLink system ids)")
    asyncio.run(main_async(args))
    return 0


def child_main(role: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--shards", type=json.loads, required=True)
    p.add_argument("--t0", type=float, default=0.0, help="(set by the driver once both sides are ready)")
    p.add_argument("--t1", type=float, default=0.0)
    p.add_argument("--kind", default="fleetctl")
    p.add_argument("--broker-url", default="")
    p.add_argument("--site-id", default="")
    p.add_argument("--client-id", default="")
    p.add_argument("--api-streams", action="store_true")
    p.add_argument("--core", type=int)
    args = p.parse_args(argv)
    pin(0, args.core)  # before any thread starts (MAVSDK's, asyncio's executor): they inherit the core
    if role == "_sim":
        result = asyncio.run(sim_main(args))
    else:
        result = asyncio.run(fleetctl_ground(args) if args.kind == "fleetctl" else bare_ground(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
