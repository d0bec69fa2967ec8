"""How fast does the built-in simulator run? Vehicles x speed factor x stream profile, one process.

For each configuration a fleet runs for a few wall seconds with every vehicle flying (quads take
off and reposition, rovers drive), its links sending into sink sockets that are never read (so no
receiver shares the CPU). Printed per run: the achieved speed factor (sim time / wall time), the CPU
time used, and vehicle-seconds simulated per CPU-second, next to real PX4 SIH's ~12 (measured on
this machine kind: ~8 % of a core per px4 process at 1x, see shared/px4-notes.md §6).

    python bench/sim_speed.py                  # 10, 50, 100 vehicles at 10x and 20x, both profiles
    python bench/sim_speed.py --vehicles 100 --speeds 20 --profiles gcs --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import socket
import time
from collections.abc import Sequence

from planner.geo import offset_wgs84
from sitl import SimFleet, SimPorts, VehicleSpec
from sitl.modes import Mode

PX4_SIH_VEHICLE_S_PER_CPU_S = 12.0
HOME = (60.1699, 24.9384, 10.0)


def _free_block(n_ports: int) -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - n_ports)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + n_ports):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


async def run_one(n: int, speed: float, profile: str, seconds: float) -> dict[str, float]:
    base = _free_block(1 + 3 * n)
    ports = SimPorts(target_host="127.0.0.1", gcs_target_port=base, api_target_base=base + 1,
                     gcs_listen_base=base + 1 + n, api_listen_base=base + 1 + 2 * n, bind_host="127.0.0.1")
    sinks = []
    for port in range(base, base + 1 + n):  # receivers that never read: the kernel drops the overflow
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        sinks.append(s)
    specs = []
    for i in range(n):
        lat, lon = offset_wgs84(HOME[0], HOME[1], 10.0 * (i // 10), 10.0 * (i % 10))
        specs.append(VehicleSpec("quad" if i % 3 else "rover", lat, lon, HOME[2]))
    try:
        async with SimFleet(specs, ports=ports, speed_factor=speed, stream_profile=profile) as fleet:  # type: ignore[arg-type]
            for i, v in enumerate(fleet.vehicles):
                v.arm("Armed by bench\t")
                e, nn, _ = v.position_enu
                if v.is_quad:
                    v.navigator.set_takeoff(e, nn, 15.0)
                    v.set_mode(Mode.TAKEOFF)
                else:
                    v.navigator.reposition(e + 200.0 * math.cos(i), nn + 200.0 * math.sin(i), 0.0, -1.0)
            await asyncio.sleep(0.2)
            sim0, wall0, cpu0, ticks0 = fleet.now_s(), time.monotonic(), time.process_time(), fleet.stats().ticks
            await asyncio.sleep(seconds)
            sim1, wall1, cpu1, ticks1 = fleet.now_s(), time.monotonic(), time.process_time(), fleet.stats().ticks
            sent = sum(link.sent_packets for v in fleet.vehicles for link in v.links)
    finally:
        for s in sinks:
            s.close()
    sim = sim1 - sim0
    wall = wall1 - wall0
    cpu = cpu1 - cpu0
    return {
        "achieved": sim / wall,
        "cpu_share": cpu / wall,
        "veh_s_per_cpu_s": n * sim / cpu if cpu > 0 else math.inf,
        "msgs_per_wall_s": sent / (wall + 0.2),
        "ticks_per_s": (ticks1 - ticks0) / wall,
    }


async def main_async(vehicles: Sequence[int], speeds: Sequence[float], profiles: Sequence[str],
                     seconds: float) -> None:
    print(f"{'vehicles':>8} {'speed':>6} {'profile':>7} {'achieved':>9} {'CPU/wall':>9} "
          f"{'veh-s/CPU-s':>12} {'vs PX4 SIH':>11} {'msgs/s':>9} {'ticks/s':>8}  sustained?")
    for profile in profiles:
        for n in vehicles:
            for speed in speeds:
                r = await run_one(n, speed, profile, seconds)
                ok = r["achieved"] >= 0.95 * speed
                print(f"{n:8d} {speed:6.0f} {profile:>7} {r['achieved']:9.2f} {r['cpu_share']:9.2f} "
                      f"{r['veh_s_per_cpu_s']:12.0f} {r['veh_s_per_cpu_s'] / PX4_SIH_VEHICLE_S_PER_CPU_S:10.1f}x "
                      f"{r['msgs_per_wall_s']:9.0f} {r['ticks_per_s']:8.1f}  {'yes' if ok else 'NO'}", flush=True)
    print(f"real PX4 SIH (one px4 process per vehicle): ~{PX4_SIH_VEHICLE_S_PER_CPU_S:g} vehicle-seconds per "
          "CPU-second, from ~8 % of a core per vehicle at 1x")
    print("sustained = sim time kept >= 95 % of the requested speed. The scheduler aims at 50 ticks/s; a "
          "saturated core shows as fewer, larger ticks (CPU/wall near 1) before the sim itself slows.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--speeds", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--profiles", nargs="+", choices=("px4", "gcs"), default=["gcs", "px4"])
    parser.add_argument("--seconds", type=float, default=4.0, help="wall seconds measured per run")
    args = parser.parse_args()
    asyncio.run(main_async(args.vehicles, args.speeds, args.profiles, args.seconds))


if __name__ == "__main__":
    main()
