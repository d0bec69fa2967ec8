"""The site's fleet as the service knows it: who is who on MAVLink, and who is free right now.

A vehicle's system id is its place in the site's `[[fleet]]` list plus one, the way the built-in
simulator and PX4 SITL number their instances (instance i has system id i + 1); a config may say
otherwise (`sysids`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from planner.site import Site
from planner.vehicle_model import VehicleModel
from vehicles.base import LandedState, VehicleState

#: A vehicle below this charge is not sent out (dispatch's energy check needs the rest anyway).
MIN_DISPATCH_BATTERY_PERCENT = 30.0


@dataclass(frozen=True)
class FleetMember:
    vehicle_id: str
    sysid: int
    model: VehicleModel
    depot: str

    @property
    def kind(self) -> str:
        return self.model.kind


def fleet_members(site: Site, sysids: Mapping[str, int] | None = None) -> dict[str, FleetMember]:
    sysids = dict(sysids or {})
    members = {}
    for i, entry in enumerate(site.fleet):
        members[entry.vehicle_id] = FleetMember(entry.vehicle_id, sysids.get(entry.vehicle_id, i + 1),
                                                site.vehicle_model(entry.model), entry.depot)
    return members


def why_not_free(state: VehicleState | None, *, busy: bool, grounded: bool, check_battery: bool = True) -> str | None:
    """None if the vehicle can take a sortie now, else why not (shown to the operator). Dispatch
    passes `check_battery=False`: its solver charges a vehicle first when a trip needs it."""
    if grounded:
        return "grounded"
    if busy:
        return "on a sortie"
    if state is None:
        return "not heard yet"
    if not state.link_alive:
        return "link lost"
    if state.armed or state.landed not in (LandedState.ON_GROUND, LandedState.UNKNOWN):
        return "not on the ground, disarmed"
    if state.position is None or state.home is None:
        return "no position yet"
    if not state.health.ok:
        return "pre-arm checks failing: " + ", ".join(state.health.failing)
    if check_battery and state.battery_percent is not None and state.battery_percent < MIN_DISPATCH_BATTERY_PERCENT:
        return f"battery {state.battery_percent:.0f} %"
    return None


def by_sysid(members: Iterable[FleetMember]) -> dict[int, str]:
    return {m.sysid: m.vehicle_id for m in members}
