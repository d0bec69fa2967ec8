"""Simulation: a built-in PX4-compatible MAVLink vehicle simulator and a real PX4 SITL launcher.

A separate peer that only speaks MAVLink: it never imports `fleetctl` or `vehicles`.

    async with SimFleet([VehicleSpec("quad", 60.17, 24.94, 10.0)], ports=SimPorts(), speed_factor=10) as fleet:
        fleet.vehicles[0].snapshot(); fleet.vehicles[0].faults.link_loss(10.0)

The simulator's names are imported lazily, so `sitl.px4` (the real-PX4 launcher) loads without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sitl.errors import BadFaultSpec, BadVehicleSpec, PortsUnavailable, SimError
    from sitl.faults import Faults
    from sitl.fleet import FleetStats, SimFleet
    from sitl.vehicle import SimPorts, SimVehicle, VehicleSnapshot, VehicleSpec

_EXPORTS = {
    "BadFaultSpec": "sitl.errors",
    "BadVehicleSpec": "sitl.errors",
    "PortsUnavailable": "sitl.errors",
    "SimError": "sitl.errors",
    "Faults": "sitl.faults",
    "FleetStats": "sitl.fleet",
    "SimFleet": "sitl.fleet",
    "SimPorts": "sitl.vehicle",
    "SimVehicle": "sitl.vehicle",
    "VehicleSnapshot": "sitl.vehicle",
    "VehicleSpec": "sitl.vehicle",
}

__all__ = [
    "BadFaultSpec",
    "BadVehicleSpec",
    "Faults",
    "FleetStats",
    "PortsUnavailable",
    "SimError",
    "SimFleet",
    "SimPorts",
    "SimVehicle",
    "VehicleSnapshot",
    "VehicleSpec",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sitl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
