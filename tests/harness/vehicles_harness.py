"""A fleet under test: the built-in simulator (default) or real PX4 SITL, plus our MavsdkFleet on it.

The built-in simulator gets free ports (its GCS target port is the port our fleet listens on);
real PX4 always sends its GCS link to 14550, so `--sitl px4` listens there.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from sitl.ports import free_udp_block
from vehicles.base import VehicleState
from vehicles.errors import ConnectionFailed
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


def specs_for(kinds: Sequence[str], homes: Sequence[tuple[float, float, float]] | None = None) -> list[Spec]:
    if homes is not None:
        return [Spec(kind, *home) for kind, home in zip(kinds, homes, strict=True)]
    # 15 m apart, east of each other, so vehicles never share a spot
    return [Spec(kind, *offset(ORIGIN[0], ORIGIN[1], 0.0, 15.0 * i), ORIGIN[2]) for i, kind in enumerate(kinds)]


@contextlib.asynccontextmanager
async def fleet_under_test(options: SitlChoice, kinds: Sequence[str], *, ready_timeout_s: float = 60.0,
                           homes: Sequence[tuple[float, float, float]] | None = None,
                           vehicle_ids: Sequence[str] | None = None) -> AsyncIterator[FleetUnderTest]:
    """`homes`: (lat_deg, lon_deg, ground AMSL m) per vehicle (default: a row near ORIGIN);
    `vehicle_ids`: their ids (default "<kind>-<i>")."""
    specs = specs_for(kinds, homes)
    ids = list(vehicle_ids) if vehicle_ids is not None else [f"{kind}-{i}" for i, kind in enumerate(kinds)]
    config = {i + 1: vid for i, vid in enumerate(ids)}
    async with contextlib.AsyncExitStack() as stack:
        if options.backend == "px4":
            fleet, sim, speed = await _start_px4(stack, options, specs, config)
        else:
            fleet, sim, speed = await _start_builtin(stack, specs, config)
        vehicles = [await fleet.vehicle(v.sysid, timeout_s=ready_timeout_s) for v in sim.vehicles]
        for vehicle in vehicles:
            await vehicle.wait_ready(ready_timeout_s)
            await vehicle.wait_for(lambda s: s.health.ok, ready_timeout_s, "pre-arm checks healthy")
        yield FleetUnderTest(fleet, sim, vehicles, specs, options.backend, speed)


async def _start_px4(stack: contextlib.AsyncExitStack, options: SitlChoice, specs: list[Spec],
                     config: dict[int, str]) -> tuple[MavsdkFleet, Any, float]:
    reason = options.px4_skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        from sitl.px4 import Px4Fleet
    except ImportError as e:
        pytest.skip(f"sitl.px4 is not importable: {e}")
    assert options.px4_dir is not None
    speed = max(1.0, min(BUILTIN_SPEED, PX4_MAX_SPEED_X_VEHICLES / len(specs)))
    # PX4's GCS link only ever goes to 14550 (a fixed PX4 port: run one such session at a time)
    fleet = await stack.enter_async_context(
        MavsdkFleet("udpin://127.0.0.1:14550", fleet_config=config, speed_factor=speed))
    sim = await stack.enter_async_context(Px4Fleet(options.px4_dir, specs, speed_factor=speed))
    return fleet, sim, speed


async def _start_builtin(stack: contextlib.AsyncExitStack, specs: list[Spec],
                         config: dict[int, str]) -> tuple[MavsdkFleet, Any, float]:
    try:
        from sitl import PortsUnavailable, SimFleet, SimPorts, VehicleSpec
    except ImportError as e:
        pytest.skip(f"built-in simulator not importable: {e}")
    n = len(specs)
    sim_specs = [VehicleSpec(s.kind, s.home_lat_deg, s.home_lon_deg, s.home_alt_amsl_m) for s in specs]
    for _ in range(5):  # another test may grab a port between our check and our bind
        base = free_udp_block(1 + 3 * n)
        ports = SimPorts(target_host="127.0.0.1", gcs_target_port=base, api_target_base=base + 1,
                         gcs_listen_base=base + 1 + n, api_listen_base=base + 1 + 2 * n)
        attempt = contextlib.AsyncExitStack()
        try:
            fleet = await attempt.enter_async_context(
                MavsdkFleet(f"udpin://127.0.0.1:{base}", fleet_config=config, speed_factor=BUILTIN_SPEED))
            sim = await attempt.enter_async_context(SimFleet(sim_specs, ports=ports, speed_factor=BUILTIN_SPEED))
        except (ConnectionFailed, PortsUnavailable):
            await attempt.aclose()
            continue
        stack.push_async_exit(attempt)
        return fleet, sim, BUILTIN_SPEED
    raise RuntimeError("could not bind a free UDP port block in 5 tries")
