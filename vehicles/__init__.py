"""The MAVLink side: command and watch PX4 vehicles (drones and rovers) from one process.

- `vehicles.base`: the `Vehicle` protocol, `VehicleState` snapshots, mission and geofence types.
- `vehicles.errors`: the `VehicleError` tree.
- `vehicles.px4`: PX4 mode numbers and the mission items PX4 executes per vehicle kind.
- `vehicles.mavsdk_backend`: `MavsdkFleet` (one mavsdk 4 instance, one UDP port, the whole fleet).
  Imported on its own so that using the types does not load MAVSDK's native library.
"""

from vehicles.base import (
    Delay,
    EventKind,
    ExclusionCircle,
    ExclusionPolygon,
    GeofenceItem,
    Health,
    Home,
    InclusionPolygon,
    Land,
    LandedState,
    MissionItem,
    MissionProgress,
    MissionState,
    PayloadRelease,
    Position,
    TakeOff,
    Vehicle,
    VehicleEvent,
    VehicleKind,
    VehicleState,
    Velocity,
    Waypoint,
)
from vehicles.errors import (
    CommandRejected,
    CommandTimeout,
    ConnectionFailed,
    GeofenceUploadFailed,
    LinkLost,
    MissionInvalid,
    MissionUploadFailed,
    NotReady,
    PlanFileError,
    UnknownVehicle,
    VehicleError,
)

__all__ = [
    "CommandRejected",
    "CommandTimeout",
    "ConnectionFailed",
    "Delay",
    "EventKind",
    "ExclusionCircle",
    "ExclusionPolygon",
    "GeofenceItem",
    "GeofenceUploadFailed",
    "Health",
    "Home",
    "InclusionPolygon",
    "Land",
    "LandedState",
    "LinkLost",
    "MissionInvalid",
    "MissionItem",
    "MissionProgress",
    "MissionState",
    "MissionUploadFailed",
    "NotReady",
    "PayloadRelease",
    "PlanFileError",
    "Position",
    "TakeOff",
    "UnknownVehicle",
    "Vehicle",
    "VehicleError",
    "VehicleEvent",
    "VehicleKind",
    "VehicleState",
    "Velocity",
    "Waypoint",
]
