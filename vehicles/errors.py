"""Errors raised by the vehicles package.

Every failure a caller can act on is one of these; library errors (mavsdk, sockets) are converted
at the boundary with ``raise ... from``::

    VehicleError
     ├── CommandRejected(command, result, reason)   the vehicle answered "no" (or did not do it)
     ├── CommandTimeout(command, timeout_s)          no answer / no confirmation in time
     ├── LinkLost(vehicle_id)                        heartbeats stopped while we waited
     ├── MissionUploadFailed(result, reason)         mission transfer failed or was refused
     ├── GeofenceUploadFailed(result, reason)        fence transfer failed or was refused
     ├── MissionInvalid(reason)                      our mission cannot be flown by this vehicle kind
     ├── NotReady(vehicle_id, reason)                state does not allow it (e.g. no position yet)
     ├── UnknownVehicle(key, known)                  no such system id / vehicle id in the fleet
     ├── ConnectionFailed(url, reason)               the MAVLink endpoint could not be opened
     └── PlanFileError(where, message, path)         a QGroundControl .plan file is malformed
"""

from __future__ import annotations

from collections.abc import Iterable


class VehicleError(Exception):
    """Base of every error raised by the vehicles package."""


class CommandRejected(VehicleError):
    """The vehicle refused a command, or ACKed it without doing it.

    `result` is the MAVLink MAV_RESULT name (e.g. ``"TEMPORARILY_REJECTED"``) or, for a mode change
    that was ACKed but never shown in the HEARTBEAT, ``"NOT_TAKEN"``. Parameter writes add
    ``"UNKNOWN_PARAM"`` (the vehicle has no such name), ``"WRONG_TYPE"`` (a value the parameter's
    type cannot hold; nothing was sent) and ``"VALUE_NOT_TAKEN"`` (the vehicle kept another value).
    `reason` is PX4's own text (STATUSTEXT) when it sent one, else ``""``.
    """

    def __init__(self, command: str, result: str, reason: str = "") -> None:
        self.command = command
        self.result = result
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"{command} rejected ({result}){detail}")


class CommandTimeout(VehicleError):
    """No final answer or confirmation within the (speed-scaled) timeout."""

    def __init__(self, command: str, timeout_s: float) -> None:
        self.command = command
        self.timeout_s = timeout_s
        super().__init__(f"{command}: no confirmation within {timeout_s:.1f} s")


class LinkLost(VehicleError):
    """The vehicle's heartbeats stopped (while a call was waiting on it)."""

    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id
        super().__init__(f"link to {vehicle_id} lost")


class MissionUploadFailed(VehicleError):
    """The mission could not be transferred, or the vehicle refused it."""

    def __init__(self, result: str, reason: str = "") -> None:
        self.result = result
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"mission upload failed ({result}){detail}")


class GeofenceUploadFailed(VehicleError):
    """The geofence could not be transferred, or the vehicle refused it."""

    def __init__(self, result: str, reason: str = "") -> None:
        self.result = result
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"geofence upload failed ({result}){detail}")


class MissionInvalid(VehicleError):
    """The mission cannot be expressed for this vehicle kind (e.g. a rover told to land)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid mission: {reason}")


class NotReady(VehicleError):
    """The vehicle's state does not allow the operation yet."""

    def __init__(self, vehicle_id: str, reason: str) -> None:
        self.vehicle_id = vehicle_id
        self.reason = reason
        super().__init__(f"{vehicle_id} not ready: {reason}")


class UnknownVehicle(VehicleError):
    """No vehicle with that system id or vehicle id is (or appeared) in the fleet."""

    def __init__(self, key: str | int, known: Iterable[str | int] = ()) -> None:
        self.key = key
        self.known = tuple(known)
        super().__init__(f"unknown vehicle {key!r} (known: {', '.join(map(str, self.known)) or 'none'})")


class ConnectionFailed(VehicleError):
    """The MAVLink endpoint could not be opened (bad URL, port in use)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot open {url}: {reason}")


class PlanFileError(VehicleError, ValueError):
    """A QGroundControl .plan file is malformed or uses what this reader does not support.

    `where` names the offending part, e.g. "mission.items[3].params".
    """

    def __init__(self, where: str, message: str, path: str | None = None) -> None:
        self.where = where
        self.message = message
        self.path = path
        prefix = f"{path}: " if path else ""
        super().__init__(f"{prefix}{where}: {message}")
