"""Smoke test of bench/fleet_scale.py: a ground process (MavsdkFleet) tracks 30 vehicles that a
simulator in another process streams at PX4's rates, answers commands, and exits cleanly.

The crash this guards against (mavsdk's wrapper freeing ctypes callbacks that MAVSDK still had
queued) killed the ground process at shutdown with SIGSEGV/SIGILL. No timing asserts: speed is
the bench's business.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

from pymavlink.dialects.v20 import development as mavlink2

from vehicles.mavsdk_backend._transport import RawUdpLink

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_bench() -> ModuleType:
    name = "bench_fleet_scale_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / "fleet_scale.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_ground_process_tracks_30_simulated_vehicles_and_survives() -> None:
    bench = _load_bench()
    args = argparse.Namespace(seconds=3.0, startup_s=2.5, cmd_rate=10.0, no_pin=True, shard_size=250)
    row = bench.run_one(30, "vehicles", args)
    assert row.note == "", row.note  # both processes ended on their own and reported
    assert row.ground_rc == 0
    assert row.seen == 30
    assert row.tracked == 30  # every link still alive at the end of the window
    assert row.sent is not None
    assert row.sent > 0
    assert row.rtts, "no command was answered"
    assert row.drops is not None  # our UDP socket is in front of MAVSDK: its kernel drop counter is readable


async def test_own_socket_routes_mavsdk_output_by_target_system() -> None:
    """What MAVSDK sends goes to its target's address only, our heartbeat to all, its broadcast
    PINGs nowhere (MAVSDK's own UDP link sent everything to everyone: ~N² datagrams/s)."""
    class FakeMavsdk:
        def __init__(self) -> None:
            self.fed: list[bytes] = []

        def subscribe_raw_bytes_to_be_sent(self, callback: object) -> None:
            pass

        def pass_received_raw_bytes(self, data: bytes) -> None:
            self.fed.append(data)

    fake = FakeMavsdk()
    link = RawUdpLink(fake, 1 << 20)
    await link.open("127.0.0.1", 0)
    ground = link.local_address
    assert ground is not None
    vehicles = []
    for sysid in (1, 2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
        sock.sendto(mav.heartbeat_encode(2, 12, 0x1D, 0, 3).pack(mav), ground)
        vehicles.append(sock)
    for _ in range(100):
        if len(fake.fed) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(link.peers()) == [1, 2]

    gcs = mavlink2.MAVLink(None, srcSystem=245, srcComponent=190)
    link._send(gcs.command_long_encode(2, 1, 512, 0, 148, 0, 0, 0, 0, 0, 0).pack(gcs))
    link._send(gcs.ping_encode(0, 1, 0, 0).pack(gcs))  # MAVSDK's broadcast latency probe
    link._send(gcs.heartbeat_encode(6, 8, 0, 0, 4).pack(gcs))

    def received(sock: socket.socket) -> list[str]:
        parser = mavlink2.MAVLink(None)
        got: list[str] = []
        sock.settimeout(0.2)
        try:
            while True:
                got += [m.get_type() for m in parser.parse_buffer(sock.recv(2048)) or []]
        except TimeoutError:
            return got

    assert received(vehicles[0]) == ["HEARTBEAT"]
    assert received(vehicles[1]) == ["COMMAND_LONG", "HEARTBEAT"]
    link.close()
    for sock in vehicles:
        sock.close()
