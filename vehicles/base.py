"""What every vehicle backend offers: the `Vehicle` protocol, its state snapshot, missions and fences.

Coordinates are WGS84 degrees at this edge; mission altitudes (`alt_m`) are metres above home
(the take-off point), position altitudes carry their reference in the name (`alt_amsl_m`, `alt_rel_m`).
Durations and timeouts are in seconds of vehicle time; a backend divides them by its speed factor.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, runtime_checkable

VehicleKind: TypeAlias = Literal["drone", "rover"]


class LandedState(enum.StrEnum):
    UNKNOWN = "unknown"
    ON_GROUND = "on_ground"
    IN_AIR = "in_air"
    TAKING_OFF = "taking_off"
    LANDING = "landing"


class MissionState(enum.StrEnum):
    """MAVLink MISSION_STATE, as carried by MISSION_CURRENT."""

    UNKNOWN = "unknown"
    NO_MISSION = "no_mission"
    NOT_STARTED = "not_started"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETE = "complete"


class EventKind(enum.StrEnum):
    DISCOVERED = "discovered"
    LINK_LOST = "link_lost"
    LINK_RESTORED = "link_restored"
    MODE_CHANGED = "mode_changed"
    ARMED = "armed"
    DISARMED = "disarmed"
    MISSION_ITEM = "mission_item"
    MISSION_COMPLETE = "mission_complete"
    STATUS_TEXT = "status_text"


@dataclass(frozen=True, slots=True)
class Position:
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    alt_rel_m: float


@dataclass(frozen=True, slots=True)
class Velocity:
    north_m_s: float
    east_m_s: float
    down_m_s: float


@dataclass(frozen=True, slots=True)
class Home:
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float


@dataclass(frozen=True, slots=True)
class MissionProgress:
    current: int = 0
    total: int = 0
    state: MissionState = MissionState.UNKNOWN


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool = False
    failing: tuple[str, ...] = ("no health report yet",)


@dataclass(frozen=True, slots=True)
class VehicleState:
    """One consistent picture of a vehicle. `None` means "not reported yet"."""

    vehicle_id: str
    sysid: int
    kind: VehicleKind
    position: Position | None = None
    velocity: Velocity | None = None
    heading_deg: float | None = None
    battery_percent: float | None = None
    battery_voltage_v: float | None = None
    armed: bool = False
    landed: LandedState = LandedState.UNKNOWN
    mode: str = "UNKNOWN"
    custom_mode: int = 0
    mission: MissionProgress = field(default_factory=MissionProgress)
    health: Health = field(default_factory=Health)
    home: Home | None = None
    link_alive: bool = False
    heartbeat_age_s: float = float("inf")
    status_text: str = ""


@dataclass(frozen=True, slots=True)
class VehicleEvent:
    """Something that happened once (as opposed to state, which is always current)."""

    vehicle_id: str
    kind: EventKind
    detail: str = ""


# ---- mission items (in flight order) ----


@dataclass(frozen=True, slots=True)
class TakeOff:
    alt_m: float


@dataclass(frozen=True, slots=True)
class Waypoint:
    lat: float
    lon: float
    alt_m: float
    speed_m_s: float | None = None
    acceptance_m: float | None = None


@dataclass(frozen=True, slots=True)
class Land:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float


@dataclass(frozen=True, slots=True)
class PayloadRelease:
    pass


MissionItem: TypeAlias = TakeOff | Waypoint | Land | Delay | PayloadRelease


# ---- geofence (vertices are (lat, lon) pairs) ----


@dataclass(frozen=True, slots=True)
class InclusionPolygon:
    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ExclusionPolygon:
    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class ExclusionCircle:
    lat: float
    lon: float
    radius_m: float


GeofenceItem: TypeAlias = InclusionPolygon | ExclusionPolygon | ExclusionCircle


@runtime_checkable
class Vehicle(Protocol):
    """One vehicle of the fleet. Every call returns once the vehicle confirmed it (a mode change
    once the HEARTBEAT shows the new mode), or raises a `vehicles.errors.VehicleError` (typed, with
    the vehicle's reason text when it gave one). `timeout_s` is in vehicle seconds (None: a
    per-operation default); while the link is down, calls raise `LinkLost` at once."""

    @property
    def vehicle_id(self) -> str: ...

    @property
    def sysid(self) -> int: ...

    @property
    def kind(self) -> VehicleKind: ...

    @property
    def state(self) -> VehicleState:
        """The latest snapshot (never queued; heartbeat age as of now)."""
        ...

    def states(self) -> AsyncIterator[VehicleState]:
        """Snapshots as they change; a slow reader skips intermediate ones (latest wins)."""
        ...

    def events(self) -> AsyncIterator[VehicleEvent]:
        """One-off events (link lost/restored, mode changes, mission items); bounded, oldest dropped."""
        ...

    async def wait_for(
        self, predicate: Callable[[VehicleState], bool], timeout_s: float, what: str = "condition",
        *, fail_on_link_loss: bool = True,
    ) -> VehicleState:
        """Until `predicate(state)` holds: CommandTimeout after `timeout_s`, LinkLost if the link
        drops first (unless `fail_on_link_loss` is false)."""
        ...

    async def wait_ready(self, timeout_s: float = 30.0) -> VehicleState:
        """Until position, home and a healthy link are known (connect)."""
        ...

    async def upload_mission(self, items: Sequence[MissionItem], *, timeout_s: float | None = None) -> None: ...

    async def clear_mission(self, *, timeout_s: float | None = None) -> None: ...

    async def upload_geofence(self, fence: Sequence[GeofenceItem], *, timeout_s: float | None = None) -> None: ...

    async def clear_geofence(self, *, timeout_s: float | None = None) -> None: ...

    async def arm(self, *, timeout_s: float | None = None) -> None: ...

    async def disarm(self, *, timeout_s: float | None = None) -> None: ...

    async def start_mission(self, *, timeout_s: float | None = None) -> None: ...

    async def pause(self, *, timeout_s: float | None = None) -> None:
        """Hold position (PX4 Hold / AUTO.LOITER); the mission keeps its place."""
        ...

    async def resume(self, *, timeout_s: float | None = None) -> None: ...

    async def return_to_launch(self, *, timeout_s: float | None = None) -> None: ...

    async def land(self, *, timeout_s: float | None = None) -> None: ...

    async def goto(self, lat: float, lon: float, alt_m: float, *, timeout_s: float | None = None) -> None:
        """Fly/drive to a point (`alt_m` above home) and hold there."""
        ...

    async def release_payload(self, *, timeout_s: float | None = None) -> None: ...

    async def set_param(self, name: str, value: int | float, *, timeout_s: float | None = None) -> None:
        """Returns once the vehicle holds `value`; CommandRejected for an unknown name or a value not taken."""
        ...

    async def get_param(self, name: str, *, timeout_s: float | None = None) -> float: ...
