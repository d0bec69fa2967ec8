"""A fleet under test: the built-in simulator (default) or real PX4 SITL, plus our MavsdkFleet on it.

The built-in simulator gets free ports (its GCS target port is the port our fleet listens on);
real PX4 always sends its GCS link to 14550, so `--sitl px4` listens there.
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from vehicles.base import VehicleState
from vehicles.mavsdk_backend import MavsdkFleet, MavsdkVehicle

ORIGIN = (60.1699, 24.9384, 15.0)  # Helsinki, ground at 15 m AMSL
BUILTIN_SPEED = 10.0
PX4_MAX_SPEED_X_VEHICLES = 12.0  # px4-notes: keep N x F within ~12 on 2 cores


class SitlChoice(Protocol):
    """The `sitl_options` fixture of tests/conftest.py (its SitlOptions; conftest modules are not
    importable by name when several exist, so tests type it by shape)."""

    @property
    def backend(self) -> str: ...
    @property
    def px4_dir(self) -> Path | None: ...
    def px4_skip_reason(self) -> str | None: ...


def free_udp_block(size: int, attempts: int = 200) -> int:
    """First port of `size` consecutive free UDP ports on 127.0.0.1 (checked by binding them)."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(20000, 60000 - size)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {size} free UDP ports found")


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`/`east_m` from (lat, lon) (flat earth; fine for a few hundred metres)."""
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    north = (lat2 - lat1) * 111_320.0
    east = (lon2 - lon1) * 111_320.0 * math.cos(math.radians(lat1))
    return math.hypot(north, east)


def distance_to(state: VehicleState, lat: float, lon: float) -> float:
    assert state.position is not None
    return distance_m(state.position.lat_deg, state.position.lon_deg, lat, lon)


@dataclass(frozen=True)
class Spec:
    """What both simulators need of a vehicle (fits sitl.VehicleSpec and sitl.px4.HomeSpec)."""

    kind: str
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    instance: int | None = None


@dataclass
class FleetUnderTest:
    fleet: MavsdkFleet
    sim: Any  # sitl.SimFleet or sitl.px4.Px4Fleet
    vehicles: list[MavsdkVehicle]  # in spec order
    specs: list[Spec]
    backend: str
    speed_factor: float

    def sim_vehicle(self, i: int) -> Any:
        return self.sim.vehicles[i]


def require_builtin(options: SitlChoice, what: str) -> None:
    """Skip (saying why) unless the run uses the built-in simulator, whose faults we inject."""
    if options.backend != "builtin":
        pytest.skip(f"{what} needs the built-in simulator's fault injection (running {options.backend})")


def specs_for(kinds: Sequence[str]) -> list[Spec]:
    # 15 m apart, east of each other, so vehicles never share a spot
    return [Spec(kind, *offset(ORIGIN[0], ORIGIN[1], 0.0, 15.0 * i), ORIGIN[2]) for i, kind in enumerate(kinds)]


@contextlib.asynccontextmanager
async def fleet_under_test(options: SitlChoice, kinds: Sequence[str], *, ready_timeout_s: float = 60.0
                           ) -> AsyncIterator[FleetUnderTest]:
    specs = specs_for(kinds)
    sim_cm: Any
    if options.backend == "px4":
        reason = options.px4_skip_reason()
        if reason:
            pytest.skip(reason)
        try:
            from sitl.px4 import Px4Fleet
        except ImportError as e:
            pytest.skip(f"sitl.px4 is not importable: {e}")
        speed = max(1.0, min(BUILTIN_SPEED, PX4_MAX_SPEED_X_VEHICLES / len(kinds)))
        url = "udpin://127.0.0.1:14550"  # PX4's GCS link only ever goes to 14550
        assert options.px4_dir is not None
        sim_cm = Px4Fleet(options.px4_dir, specs, speed_factor=speed)
    else:
        try:
            from sitl import SimFleet, SimPorts, VehicleSpec
        except ImportError as e:
            pytest.skip(f"built-in simulator not importable: {e}")
        speed = BUILTIN_SPEED
        n = len(kinds)
        base = free_udp_block(1 + 3 * n)
        ports = SimPorts(target_host="127.0.0.1", gcs_target_port=base, api_target_base=base + 1,
                         gcs_listen_base=base + 1 + n, api_listen_base=base + 1 + 2 * n)
        url = f"udpin://127.0.0.1:{base}"
        sim_specs = [VehicleSpec(s.kind, s.home_lat_deg, s.home_lon_deg, s.home_alt_amsl_m) for s in specs]
        sim_cm = SimFleet(sim_specs, ports=ports, speed_factor=speed)
    config = {i + 1: f"{kind}-{i}" for i, kind in enumerate(kinds)}
    async with MavsdkFleet(url, fleet_config=config, speed_factor=speed) as fleet, sim_cm as sim:
        vehicles = [await fleet.vehicle(v.sysid, timeout_s=ready_timeout_s) for v in sim.vehicles]
        for vehicle in vehicles:
            await vehicle.wait_ready(ready_timeout_s)
            await vehicle.wait_for(lambda s: s.health.ok, ready_timeout_s, "pre-arm checks healthy")
        yield FleetUnderTest(fleet, sim, vehicles, specs, options.backend, speed)
