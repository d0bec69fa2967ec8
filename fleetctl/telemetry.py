"""Vehicle state out: one retained message per vehicle on fleet/<site>/vehicles/<id>/state, coalesced
to at most `rate_hz` however fast PX4 streams (50 Hz positions times the speed factor), and only when
something an operator would see changed. Link losses and restorations are events too."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from fleetctl.bus import Bus, VehicleStateMessage
from fleetctl.clock import Clock
from fleetctl.fleet_view import FleetMember
from fleetctl.store import Store
from vehicles.base import EventKind, VehicleState
from vehicles.mavsdk_backend import MavsdkFleet

#: Moves smaller than this (metres) or battery changes below this (points) are not news.
MOVED_M = 1.0
BATTERY_STEP_PERCENT = 1.0
#: Vehicle events worth a line in the event log (the rest is telemetry).
_LOGGED = {EventKind.LINK_LOST: "vehicle.link_lost", EventKind.LINK_RESTORED: "vehicle.link_restored",
           EventKind.DISCOVERED: "vehicle.discovered"}


def message_of(state: VehicleState, vehicle_id: str, kind: str, sortie_id: str | None, clock: Clock
               ) -> VehicleStateMessage:
    p = state.position
    return VehicleStateMessage(
        vehicle_id=vehicle_id, kind="drone" if kind == "drone" else "robot", mode=state.mode, armed=state.armed,
        lat_deg=p.lat_deg if p else None, lon_deg=p.lon_deg if p else None, alt_m=p.alt_rel_m if p else None,
        battery_percent=None if state.battery_percent is None else max(0.0, min(100.0, state.battery_percent)),
        link_alive=state.link_alive, sortie_id=sortie_id, at=clock.now())


def changed(old: VehicleStateMessage | None, new: VehicleStateMessage) -> bool:
    if old is None:
        return True
    if (old.mode, old.armed, old.link_alive, old.sortie_id) != (new.mode, new.armed, new.link_alive, new.sortie_id):
        return True
    if (old.battery_percent is None) != (new.battery_percent is None) or (
            old.battery_percent is not None and new.battery_percent is not None
            and abs(old.battery_percent - new.battery_percent) >= BATTERY_STEP_PERCENT):
        return True
    if old.lat_deg is None or old.lon_deg is None or new.lat_deg is None or new.lon_deg is None:
        return (old.lat_deg is None) != (new.lat_deg is None)
    north = (new.lat_deg - old.lat_deg) * 111_320.0
    east = (new.lon_deg - old.lon_deg) * 111_320.0 * math.cos(math.radians(new.lat_deg))
    up = (new.alt_m or 0.0) - (old.alt_m or 0.0)
    return math.sqrt(north * north + east * east + up * up) >= MOVED_M


class VehicleStatePublisher:
    def __init__(self, bus: Bus, store: Store, fleet: MavsdkFleet, members: dict[str, FleetMember], clock: Clock,
                 sortie_of: Callable[[str], str | None], *, rate_hz: float = 1.0) -> None:
        self._bus = bus
        self._store = store
        self._fleet = fleet
        self._members = members
        self._clock = clock
        self._sortie_of = sortie_of
        self._period_s = 1.0 / rate_hz
        self._last: dict[str, VehicleStateMessage] = {}
        self.published = 0

    async def run(self) -> None:
        """Every period (wall seconds: the bound is on MQTT traffic), publish what changed."""
        by_sysid = {m.sysid: m for m in self._members.values()}
        while True:
            await asyncio.sleep(self._period_s)
            for sysid, vehicle in self._fleet.vehicles.items():
                member = by_sysid.get(sysid)
                if member is None:
                    continue
                new = message_of(vehicle.state, member.vehicle_id, member.kind, self._sortie_of(member.vehicle_id),
                                 self._clock)
                if changed(self._last.get(member.vehicle_id), new) and self._bus.publish_nowait(
                        self._bus.topics.vehicle_state(member.vehicle_id), new, retain=True):
                    self._last[member.vehicle_id] = new
                    self.published += 1

    async def log_events(self) -> None:
        """Link losses and restorations of the fleet's vehicles, into the event log."""
        names = {m.sysid: m.vehicle_id for m in self._members.values()}
        ids = {v.vehicle_id: names.get(sysid, v.vehicle_id) for sysid, v in self._fleet.vehicles.items()}
        async for event in self._fleet.events():
            kind = _LOGGED.get(event.kind)
            if kind is None:
                continue
            vehicle_id = ids.get(event.vehicle_id, event.vehicle_id)
            await self._store.append_event("vehicle", vehicle_id, kind, {"detail": event.detail})
