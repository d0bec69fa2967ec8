"""The MAVSDK (mavsdk 4, in-process) backend: one MAVSDK instance serves the whole fleet."""

from vehicles.mavsdk_backend.fleet import DEFAULT_URL, MavsdkFleet
from vehicles.mavsdk_backend.vehicle import MavsdkVehicle

__all__ = ["DEFAULT_URL", "MavsdkFleet", "MavsdkVehicle"]
