"""How fast does the built-in simulator really run? Vehicles x speed factor x stream profile, one core.

The simulator runs in this process (one asyncio loop: one core). A ground station runs in a child
process (so its CPU is not charged to the simulator), binds the ports the vehicles send to and
measures, from what it receives over UDP:

- the speed actually achieved, per vehicle: the vehicle's own time_boot_ms advanced (ATTITUDE,
  LOCAL_POSITION_NED, GLOBAL_POSITION_INT stamps) over the ground station's wall time;
- whether the stream is honest: the share of distinct ATTITUDE and GLOBAL_POSITION_INT payloads
  on each vehicle's API link (a copy of one state sent twice has the same payload and stamp), and,
  decoding a sample with pymavlink, the share of consecutive GLOBAL_POSITION_INT of moving vehicles
  whose position changed.

Every vehicle flies during the measurement (quads take off and cruise, rovers drive). Printed per
run: the requested and achieved speed (minimum, median and maximum over vehicles), the simulator's
CPU share, its lag events, vehicle-seconds per CPU-second next to real PX4 SIH's ~12 (~8 % of a
core per px4 process at 1x, shared/px4-notes.md §6), and the honesty checks.

    python bench/sim_speed.py                    # 1..30 vehicles at 20x, both profiles (~2 minutes)
    python bench/sim_speed.py --vehicles 20 --speeds 10 20 --profiles px4 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PX4_SIH_VEHICLE_S_PER_CPU_S = 12.0
HOME = (60.1699, 24.9384, 10.0)
MSG_ATTITUDE = 30
MSG_LOCAL_POSITION_NED = 32
MSG_GLOBAL_POSITION_INT = 33
# Messages whose payload starts with time_boot_ms (uint32) in MAVLink 2 wire order.
STAMPED = frozenset({MSG_ATTITUDE, MSG_LOCAL_POSITION_NED, MSG_GLOBAL_POSITION_INT})
FRESHNESS_CHECKED = (MSG_ATTITUDE, MSG_GLOBAL_POSITION_INT)
DECODED_SYSIDS = 4  # the ground station decodes GLOBAL_POSITION_INT of the first few vehicles
WARMUP_WALL_S = 1.0
RCVBUF_BYTES = 8 * 1024 * 1024


# --- ground station (child process) -------------------------------------------------------------
@dataclass
class VehicleClock:
    first: tuple[float, int] | None = None  # (wall s, time_boot_ms) of the first stamp in the window
    last: tuple[float, int] | None = None


@dataclass
class Freshness:
    """Payloads of one message of one vehicle on its API link."""

    count: int = 0
    payloads: set[bytes] = field(default_factory=set)
    stamp_repeats: int = 0  # a time_boot_ms not later than the previous one
    last_stamp: int = -1


class Ground:
    """Reads every datagram, hops over packets by their headers and keeps the few numbers above."""

    def __init__(self, gcs_port: int, window_start: float) -> None:
        from pymavlink.dialects.v20 import development as mavlink2

        self._mav = mavlink2.MAVLink(None)
        self.gcs_port = gcs_port
        self.window_start = window_start
        self.clocks: dict[int, VehicleClock] = {}
        self.fresh: dict[tuple[int, int], Freshness] = {}
        self.position: dict[int, tuple[int, int, int]] = {}
        self.moved = 0
        self.still = 0
        self.packets = 0

    def datagram(self, data: bytes, port: int, wall: float) -> None:
        in_window = wall >= self.window_start
        api = port != self.gcs_port
        i, n = 0, len(data)
        while i + 12 <= n:
            if data[i] != 0xFD:
                i += 1
                continue
            length = data[i + 1]
            end = i + 12 + length + (13 if data[i + 2] & 1 else 0)
            if end > n:
                break
            self.packets += 1
            msgid = data[i + 7] | (data[i + 8] << 8) | (data[i + 9] << 16)
            if in_window and msgid in STAMPED and length >= 4:
                self._stamped(data, i, end, msgid, length, api, wall)
            i = end

    def _stamped(self, data: bytes, i: int, end: int, msgid: int, length: int, api: bool, wall: float) -> None:
        sysid = data[i + 5]
        stamp = struct.unpack_from("<I", data, i + 10)[0]
        clock = self.clocks.setdefault(sysid, VehicleClock())
        if clock.first is None:
            clock.first = (wall, stamp)
        clock.last = (wall, stamp)
        if not api or msgid not in FRESHNESS_CHECKED:
            return
        fresh = self.fresh.setdefault((sysid, msgid), Freshness())
        fresh.count += 1
        fresh.payloads.add(data[i + 10:i + 10 + length])
        if stamp <= fresh.last_stamp:
            fresh.stamp_repeats += 1
        fresh.last_stamp = stamp
        if msgid == MSG_GLOBAL_POSITION_INT and sysid <= DECODED_SYSIDS:
            msg = self._mav.decode(bytearray(data[i:end]))
            pos = (msg.lat, msg.lon, msg.alt)
            before = self.position.get(sysid)
            if before is not None:
                if pos != before:
                    self.moved += 1
                else:
                    self.still += 1
            self.position[sysid] = pos

    def report(self) -> dict[str, Any]:
        speeds = {}
        for sysid, c in self.clocks.items():
            if c.first is not None and c.last is not None and c.last[0] - c.first[0] > 0.5:
                speeds[sysid] = (c.last[1] - c.first[1]) / 1000.0 / (c.last[0] - c.first[0])
        distinct = {}
        for msgid in FRESHNESS_CHECKED:
            rows = [f for (_, m), f in self.fresh.items() if m == msgid]
            total = sum(f.count for f in rows)
            if total:
                distinct[msgid] = (sum(len(f.payloads) for f in rows) / total,
                                   sum(f.stamp_repeats for f in rows))
        return {"speeds": speeds, "distinct": {str(k): v for k, v in distinct.items()},
                "moved": self.moved, "still": self.still, "packets": self.packets}


def ground_main(gcs_port: int, api_base: int, n: int, seconds: float) -> None:
    socks: list[tuple[socket.socket, int]] = []
    sel = selectors.DefaultSelector()
    for port in [gcs_port, *range(api_base, api_base + n)]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        s.bind(("127.0.0.1", port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, port)
        socks.append((s, port))
    print("ready", flush=True)
    # The window opens a little after the first packet: start-up (binding, arming) is not measured.
    ground: Ground | None = None
    end = time.monotonic() + 60.0  # nothing heard for a minute: report nothing
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                wall = time.monotonic()
                if ground is None:
                    ground = Ground(gcs_port, wall + WARMUP_WALL_S)
                    end = wall + WARMUP_WALL_S + seconds
                ground.datagram(data, key.data, wall)
    print(json.dumps(ground.report() if ground else {}), flush=True)
    for s, _ in socks:
        s.close()


# --- simulator (this process) -------------------------------------------------------------------
async def run_one(n: int, speed: float, profile: str, seconds: float) -> dict[str, Any]:
    from planner.geo import offset_wgs84
    from sitl import SimFleet, VehicleSpec
    from sitl.ports import free_sim_ports

    ports = free_sim_ports(n)
    ground = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--ground", str(ports.gcs_target_port), str(ports.api_target_base), str(n),
        str(seconds), stdout=subprocess.PIPE,
    )
    assert ground.stdout is not None
    if (await ground.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the ground station did not start")
    specs = []
    for i in range(n):
        lat, lon = offset_wgs84(HOME[0], HOME[1], 10.0 * (i // 10), 10.0 * (i % 10))
        specs.append(VehicleSpec("rover" if i % 3 == 0 else "quad", lat, lon, HOME[2]))
    async with SimFleet(specs, ports=ports, speed_factor=speed, stream_profile=profile) as fleet:  # type: ignore[arg-type]
        for i, v in enumerate(fleet.vehicles):
            _fly_far(v, i)
        await asyncio.sleep(WARMUP_WALL_S)
        s0, cpu0, wall0 = fleet.stats(), time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        s1, cpu1, wall1 = fleet.stats(), time.process_time(), time.monotonic()
        out, _ = await ground.communicate()
    measured = json.loads(out.decode().strip().splitlines()[-1])
    cpu = cpu1 - cpu0
    sim = s1.sim_time_s - s0.sim_time_s
    return {
        "ground": measured,
        "sim_self": sim / (wall1 - wall0),
        "cpu_share": cpu / (wall1 - wall0),
        "veh_s_per_cpu_s": n * sim / cpu if cpu > 0 else math.inf,
        "lag_events": s1.lag_events - s0.lag_events,
        "behind_s": s1.behind_s - s0.behind_s,
    }


def _fly_far(v: Any, i: int) -> None:
    """Keep the vehicle moving for the whole run: a quad climbs, then cruises 3 km; a rover drives 2 km."""
    from sitl.modes import Mode

    v.arm("Armed by bench\t")
    e, n, _ = v.position_enu
    far_e, far_n = e + 3000.0 * math.cos(i), n + 3000.0 * math.sin(i)
    if v.is_quad:
        v.navigator.set_takeoff(e, n, 15.0)
        v.set_mode(Mode.TAKEOFF)
        v.schedule(14.0, lambda: v.navigator.reposition(far_e, far_n, 15.0, -1.0))
    else:
        v.navigator.reposition(far_e, far_n, 0.0, -1.0)


def _row(n: int, speed: float, profile: str, r: dict[str, Any]) -> str:
    g = r["ground"]
    speeds = sorted(g.get("speeds", {}).values())
    lo, med, hi = (speeds[0], statistics.median(speeds), speeds[-1]) if speeds else (0.0, 0.0, 0.0)
    heard = f"{len(speeds)}/{n}"
    distinct = g.get("distinct", {})
    att = distinct.get(str(MSG_ATTITUDE))
    gpi = distinct.get(str(MSG_GLOBAL_POSITION_INT))
    att_s = f"{100 * att[0]:6.1f}%" if att else "      -"
    gpi_s = f"{100 * gpi[0]:6.1f}%" if gpi else "      -"
    repeats = (att[1] if att else 0) + (gpi[1] if gpi else 0)
    moves = g.get("moved", 0) + g.get("still", 0)
    moved_s = f"{100 * g['moved'] / moves:6.1f}%" if moves else "      -"
    honest = (bool(speeds) and len(speeds) == n and lo >= 0.95 * speed and r["lag_events"] == 0
              and (att is None or att[0] == 1.0) and (gpi is None or gpi[0] == 1.0) and repeats == 0)
    return (f"{n:8d} {speed:6.0f} {profile:>7} {lo:7.2f} {med:7.2f} {hi:7.2f} {heard:>6} {r['cpu_share']:6.2f} "
            f"{r['lag_events']:4d} {r['behind_s']:8.1f} {r['veh_s_per_cpu_s']:7.0f} "
            f"{r['veh_s_per_cpu_s'] / PX4_SIH_VEHICLE_S_PER_CPU_S:6.1f}x "
            f"{att_s} {gpi_s} {repeats:5d} {moved_s}  {'yes' if honest else 'NO'}")


async def main_async(vehicles: Sequence[int], speeds: Sequence[float], profiles: Sequence[str],
                     seconds: float) -> None:
    print("achieved = the vehicles' time_boot_ms advanced per wall second, as the ground station received it")
    print(f"{'vehicles':>8} {'speed':>6} {'profile':>7} {'ach.min':>7} {'median':>7} {'max':>7} {'heard':>6} "
          f"{'CPU':>6} {'lags':>4} {'behind_s':>8} {'veh-s/':>7} {'vs PX4':>7} {'ATT':>7} {'GPI':>7} "
          f"{'reps':>5} {'moved':>7}  honest at speed?")
    print(f"{'':>8} {'':>6} {'':>7} {'':>7} {'':>7} {'':>7} {'':>6} {'/wall':>6} {'':>4} {'':>8} "
          f"{'CPU-s':>7} {'SIH':>7} {'distinct':>15}")
    for profile in profiles:
        for speed in speeds:
            for n in vehicles:
                r = await run_one(n, speed, profile, seconds)
                print(_row(n, speed, profile, r), flush=True)
    print(f"real PX4 SIH (one px4 process per vehicle): ~{PX4_SIH_VEHICLE_S_PER_CPU_S:g} vehicle-seconds per "
          "CPU-second, from ~8 % of a core per vehicle at 1x")
    print("honest at speed = every vehicle heard and its time_boot_ms advanced >= 95 % of the requested speed, "
          "no lag event, every ATTITUDE / GLOBAL_POSITION_INT payload distinct with a later stamp (reps = "
          "stamps not later than the previous one). moved = decoded consecutive GLOBAL_POSITION_INT of "
          f"vehicles 1..{DECODED_SYSIDS} whose position changed. Lag events with CPU/wall well below 1: "
          "other processes had the core, measure again on a quiet host.")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--ground":
        gcs, api, n, seconds = sys.argv[2:6]
        ground_main(int(gcs), int(api), int(n), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, nargs="+", default=[1, 5, 10, 15, 20, 30])
    parser.add_argument("--speeds", type=float, nargs="+", default=[20.0])
    parser.add_argument("--profiles", nargs="+", choices=("px4", "gcs"), default=["gcs", "px4"])
    parser.add_argument("--seconds", type=float, default=4.0, help="wall seconds measured per run")
    args = parser.parse_args()
    asyncio.run(main_async(args.vehicles, args.speeds, args.profiles, args.seconds))


if __name__ == "__main__":
    main()
