"""Fixtures for simulator tests: free UDP port blocks and a running SimFleet.

    async with sim_fleet_factory([VehicleSpec("quad", ...)], speed_factor=10) as (fleet, ports):
        ...  # a client binds ports.api_target_base + i (API link) or ports.gcs_target_port (GCS link)

Ports are never PX4's defaults: every fleet gets a fresh block checked free on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from sitl import PortsUnavailable, SimFleet, SimPorts, VehicleSpec
from sitl.ports import free_sim_ports

FleetFactory = Callable[..., contextlib.AbstractAsyncContextManager[tuple[SimFleet, SimPorts]]]


@pytest.fixture
def sim_fleet_factory() -> FleetFactory:
    @contextlib.asynccontextmanager
    async def factory(specs: Sequence[VehicleSpec], speed_factor: float = 10.0,
                      **kwargs: Any) -> AsyncIterator[tuple[SimFleet, SimPorts]]:
        n = max((s.instance if s.instance is not None else i) for i, s in enumerate(specs)) + 1
        fleet: SimFleet | None = None
        for _ in range(5):
            ports = free_sim_ports(n)
            fleet = SimFleet(specs, ports=ports, speed_factor=speed_factor, **kwargs)
            try:
                await fleet.__aenter__()
            except PortsUnavailable:
                fleet = None
                continue
            break
        assert fleet is not None, "could not bind a free port block in 5 tries"
        try:
            yield fleet, ports
        finally:
            await fleet.aclose()

    return factory
