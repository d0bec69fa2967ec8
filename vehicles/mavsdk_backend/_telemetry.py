"""One vehicle's picture of itself, fed from MAVSDK, published as snapshots + events.

Telemetry PX4 streams fast (position, velocity, heading; battery, landed state, health, home) is
*sampled* from MAVSDK's Telemetry getters (cached values: no waiting) by one fleet-wide timer on the
loop: position, velocity and heading every round, the slowly changing rest every few rounds. PX4
streams them at up to 50 Hz (times the speed factor), and one Python callback per message from
MAVSDK's thread fights the loop for the GIL until MAVSDK starts dropping callbacks ("a subscriber is
not keeping up").
Rare, must-not-miss messages are subscribed: status texts (Telemetry), and through MavlinkDirect
HEARTBEAT (MAVSDK's flight-mode enum folds PX4 modes together and hides the arrival time we need for
link age), MISSION_CURRENT (MAVSDK's progress lacks mission_state ACTIVE / PAUSED / COMPLETE) and
COMMAND_ACK (PX4's MAV_RESULT behind MAVSDK's own result enum).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mavsdk.plugins.mavlink_direct import MavlinkDirect
from mavsdk.plugins.telemetry import Telemetry

from vehicles import px4
from vehicles.base import (
    EventKind,
    Health,
    Home,
    LandedState,
    MissionProgress,
    MissionState,
    Position,
    VehicleEvent,
    VehicleKind,
    VehicleState,
    Velocity,
)
from vehicles.mavsdk_backend._bridge import Inbox
from vehicles.streams import Fanout, Latest

log = logging.getLogger(__name__)

# MAVSDK Telemetry.LandedState values -> ours
_LANDED = {
    0: LandedState.UNKNOWN,
    1: LandedState.ON_GROUND,
    2: LandedState.IN_AIR,
    3: LandedState.TAKING_OFF,
    4: LandedState.LANDING,
}
# MAVSDK StatusTextType: DEBUG 0 .. WARNING 3, ERROR 4, CRITICAL 5 .. EMERGENCY 7 (reverse of MAV_SEVERITY)
_STATUS_WARNING = 3
_HEALTH_CHECKS = (
    ("gyrometer_calibration", "is_gyrometer_calibration_ok"),
    ("accelerometer_calibration", "is_accelerometer_calibration_ok"),
    ("magnetometer_calibration", "is_magnetometer_calibration_ok"),
    ("local_position", "is_local_position_ok"),
    ("global_position", "is_global_position_ok"),
    ("home_position", "is_home_position_ok"),
    ("armable", "is_armable"),
)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# MAVSDK Telemetry objects -> our snapshot fields (run on MAVSDK's thread)
def _position(p: Any) -> dict[str, Any]:
    if not (math.isfinite(p.latitude_deg) and math.isfinite(p.longitude_deg)):
        return {}  # no fix yet: keep what we had
    return {"position": Position(p.latitude_deg, p.longitude_deg, p.absolute_altitude_m, p.relative_altitude_m)}


def _velocity(v: Any) -> dict[str, Any]:
    return {"velocity": Velocity(v.north_m_s, v.east_m_s, v.down_m_s)}


def _heading(h: Any) -> dict[str, Any]:
    return {"heading_deg": _finite(h.heading_deg)}


def _battery(b: Any) -> dict[str, Any]:
    return {"battery_percent": _finite(b.remaining_percent), "battery_voltage_v": _finite(b.voltage_v)}


def _landed(state: Any) -> dict[str, Any]:
    return {"landed": _LANDED.get(int(state), LandedState.UNKNOWN)}


def _health(h: Any) -> dict[str, Any]:
    failing = tuple(name for name, attr in _HEALTH_CHECKS if not getattr(h, attr))
    return {"health": Health(ok=not failing, failing=failing)}


def _home(h: Any) -> dict[str, Any]:
    if not (math.isfinite(h.latitude_deg) and math.isfinite(h.longitude_deg)):
        return {}  # PX4 has no home yet
    return {"home": Home(h.latitude_deg, h.longitude_deg, h.absolute_altitude_m)}


class Tracker:
    """Owns the snapshot of one vehicle. Mutated only on the loop: by `sample()` and by the fleet's
    inbox that carries subscribed messages over from MAVSDK's thread. A changed tracker adds itself
    to the fleet's `dirty` set; the fleet publishes the set after each batch (`publish()`)."""

    def __init__(self, vehicle_id: str, sysid: int, kind: VehicleKind, inbox: Inbox, dirty: set[Tracker],
                 on_link_restored: Callable[[], None], fleet_events: Fanout[VehicleEvent],
                 on_heartbeat: Callable[[], None] = lambda: None) -> None:
        self._snap = VehicleState(vehicle_id, sysid, kind)
        self.snapshots: Latest[VehicleState] = Latest(self._snap)
        self.events: Fanout[VehicleEvent] = Fanout()
        self._fleet_events = fleet_events
        self._on_link_restored = on_link_restored
        self._on_heartbeat_hook = on_heartbeat
        self.heartbeat_at_s = -math.inf  # time.monotonic() of the last HEARTBEAT
        self.heartbeats = 0
        self._texts: deque[tuple[float, int, str]] = deque(maxlen=32)
        self._acks: dict[int, tuple[float, int]] = {}  # command -> (when, MAV_RESULT) of its last ACK
        self._dirty = False
        self._dirty_set = dirty
        self._telemetry: Telemetry | None = None
        self._inbox = inbox
        self._heartbeat_key = (sysid, "heartbeat")
        # Every MISSION_CURRENT as it arrives, with its arrival time (snapshots only carry changes,
        # but "PX4 still says the same after our upload" is news to `start_mission`).
        self.mission_reports: Latest[tuple[float, MissionProgress]] = Latest((-math.inf, MissionProgress()))

    @property
    def snap(self) -> VehicleState:
        return self._snap

    # ---- wiring (called once, on the loop) ----

    def subscribe(self, telemetry: Telemetry, direct: MavlinkDirect) -> None:
        self._telemetry = telemetry
        telemetry.subscribe_status_text(self._status_text_cb)
        direct.subscribe_message("HEARTBEAT", self._heartbeat_cb)
        direct.subscribe_message("MISSION_CURRENT", self._mission_current_cb)
        direct.subscribe_message("COMMAND_ACK", self._command_ack_cb)

    def sample(self, *, slow: bool = True) -> None:
        """Read the latest telemetry MAVSDK cached (no waiting); `slow` also reads battery, landed
        state, health and home. Publishing is the caller's (the fleet's dirty set)."""
        t = self._telemetry
        if t is None:
            return
        changes = {**_position(t.position()), **_velocity(t.velocity_ned()), **_heading(t.heading())}
        if slow:
            changes.update(**_battery(t.battery()), **_landed(t.landed_state()), **_health(t.health()),
                           **_home(t.home()))
        snap = self._snap
        changed = {k: v for k, v in changes.items() if getattr(snap, k) != v}
        if changed:
            self._set(**changed)

    # ---- on MAVSDK's callback thread: parse, hand over, nothing else ----

    def _status_text_cb(self, data: Any, _user_data: Any) -> None:
        self._inbox.ordered(functools.partial(self._on_text, time.monotonic(), int(data.type), str(data.text)))

    def _heartbeat_cb(self, msg: Any, _ud: Any) -> None:
        at = time.monotonic()
        fields = json.loads(msg.fields_json)
        mav_type, base_mode, custom_mode = int(fields["type"]), int(fields["base_mode"]), int(fields["custom_mode"])
        self._inbox.latest(self._heartbeat_key, lambda: self._on_heartbeat(at, mav_type, base_mode, custom_mode))

    def _mission_current_cb(self, msg: Any, _ud: Any) -> None:
        at = time.monotonic()
        fields = json.loads(msg.fields_json)
        progress = MissionProgress(int(fields["seq"]), int(fields.get("total", 0)),
                                   px4.mission_state(int(fields.get("mission_state", 0))))
        self._inbox.ordered(lambda: self._on_mission_current(at, progress))

    def _command_ack_cb(self, msg: Any, _ud: Any) -> None:
        at = time.monotonic()
        fields = json.loads(msg.fields_json)
        command, result = int(fields["command"]), int(fields["result"])
        self._inbox.ordered(lambda: self._acks.__setitem__(command, (at, result)))

    # ---- applied on the loop ----

    def _set(self, **changes: Any) -> None:
        self._snap = replace(self._snap, **changes)
        if not self._dirty:
            self._dirty = True
            self._dirty_set.add(self)

    def _event(self, kind: EventKind, detail: str = "") -> None:
        event = VehicleEvent(self._snap.vehicle_id, kind, detail)
        self.events.publish(event)
        self._fleet_events.publish(event)

    def _on_heartbeat(self, at: float, mav_type: int, base_mode: int, custom_mode: int) -> None:
        self._on_heartbeat_hook()
        old = self._snap
        self.heartbeat_at_s = at
        self.heartbeats += 1
        armed = bool(base_mode & px4.MAV_MODE_FLAG_SAFETY_ARMED)
        kind = px4.kind_of_mav_type(mav_type) or old.kind
        self._set(custom_mode=custom_mode, mode=px4.mode_name(custom_mode), armed=armed, kind=kind,
                  link_alive=True)
        if old.custom_mode != custom_mode and self.heartbeats > 1:
            self._event(EventKind.MODE_CHANGED, f"{old.mode}->{self._snap.mode}")
        if old.armed != armed and self.heartbeats > 1:
            self._event(EventKind.ARMED if armed else EventKind.DISARMED)
        if not old.link_alive and self.heartbeats > 1:
            log.info("%s: link restored", old.vehicle_id)
            self._event(EventKind.LINK_RESTORED)
            self._on_link_restored()

    def _on_mission_current(self, at: float, progress: MissionProgress) -> None:
        self.mission_reports.set((at, progress))
        old = self._snap.mission
        if progress == old:
            return
        self._set(mission=progress)
        if progress.current != old.current and progress.state == MissionState.ACTIVE:
            self._event(EventKind.MISSION_ITEM, f"{progress.current}/{progress.total}")
        if progress.state == MissionState.COMPLETE and old.state != MissionState.COMPLETE:
            self._event(EventKind.MISSION_COMPLETE, f"{progress.current}/{progress.total}")

    def _on_text(self, at: float, severity: int, text: str) -> None:
        text = text.strip()
        self._texts.append((at, severity, text))
        self._set(status_text=text)
        self._event(EventKind.STATUS_TEXT, text)

    def check_link(self, now_s: float, timeout_s: float) -> None:
        """Called periodically by the fleet: declare the link lost when heartbeats stop."""
        if self._snap.link_alive and now_s - self.heartbeat_at_s > timeout_s:
            log.warning("%s: link lost (no heartbeat for %.1f s)", self._snap.vehicle_id, now_s - self.heartbeat_at_s)
            self._set(link_alive=False)
            self._event(EventKind.LINK_LOST, f"no heartbeat for {now_s - self.heartbeat_at_s:.1f} s")
            self.publish()

    def publish(self) -> None:
        """Publish the snapshot if it changed since the last time."""
        if self._dirty:
            self._dirty = False
            self._dirty_set.discard(self)
            self._snap = replace(self._snap, heartbeat_age_s=max(0.0, time.monotonic() - self.heartbeat_at_s))
            self.snapshots.set(self._snap)

    def current(self) -> VehicleState:
        return replace(self._snap, heartbeat_age_s=max(0.0, time.monotonic() - self.heartbeat_at_s))

    def reasons_since(self, t0_s: float) -> str:
        """PX4's explanation for something that happened after t0: its warning-or-worse status
        texts since then (PX4 sends them next to the COMMAND_ACK), else any text since then."""
        recent = [(sev, text) for at, sev, text in self._texts if at >= t0_s and text]
        important = [text for sev, text in recent if sev >= _STATUS_WARNING] or [text for _, text in recent]
        return "; ".join(dict.fromkeys(important))

    def ack_since(self, command: int, t0_s: float) -> int | None:
        """The MAV_RESULT of the last COMMAND_ACK for `command` received after t0, if any."""
        at, result = self._acks.get(command, (-math.inf, 0))
        return result if at >= t0_s else None

    def has_text_since(self, t0_s: float, min_severity: int = 0) -> bool:
        return any(at >= t0_s and severity >= min_severity for at, severity, _ in self._texts)
