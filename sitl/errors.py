"""Errors of the built-in simulator (`sitl`).

    SimError                      the simulator could not do what it was asked
     ├── PortsUnavailable         a vehicle's UDP port could not be bound (names host and port)
     ├── BadVehicleSpec           a VehicleSpec that cannot be simulated (kind, coordinates, instance)
     ├── BadFaultSpec             a fault given on the command line that cannot be parsed
     └── Px4LaunchError           real PX4 SITL could not be launched (its branch: `sitl/px4_errors.py`)
          ├── Px4NotFound, InstanceOutOfRange, InstanceBusy, Px4Exited, Px4StartTimeout
"""

from __future__ import annotations


class SimError(Exception):
    """Base of every error the simulator raises."""


class PortsUnavailable(SimError):
    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        super().__init__(f"cannot bind UDP {host}:{port}: {reason}")


class BadVehicleSpec(SimError):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(f"vehicle spec #{index}: {message}")


class BadFaultSpec(SimError):
    def __init__(self, text: str, message: str) -> None:
        self.text = text
        super().__init__(f"fault {text!r}: {message}")
