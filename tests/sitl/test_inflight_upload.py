"""A new no-fly zone while a quad flies its sortie (issue 10): the rerouted mission goes up in flight
and the quad flies it from item 0 in Mission mode, never lands on the way, keeps out of the zone
and lands on its pad. Over MAVLink through the vehicles API, in the order `fleetctl.sorties.replan`
prescribes (clear the fence, upload the mission, then the new fence). Runs on the built-in
simulator, or on real PX4 SITL with `--sitl px4 --px4-dir BUILD`."""

from __future__ import annotations

import asyncio
import contextlib
import math
from pathlib import Path

import pytest
import shapely
from vehicles_harness import SitlChoice, distance_to, fleet_under_test, offset

from fleetctl.sorties import VehicleSlot, fence_for, mission, plan_sortie
from fleetctl.sorties.replan import affected, reroute
from planner.airspace import NoFlyZone
from planner.flight import FlightPlanner
from planner.site import load_site
from vehicles.base import (
    ExclusionCircle,
    InclusionPolygon,
    Land,
    LandedState,
    MissionState,
    TakeOff,
    VehicleState,
    Waypoint,
)
from vehicles.mavsdk_backend import MavsdkVehicle

pytestmark = [pytest.mark.sitl]
SITE = load_site(Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki")
DEPOT = "erottaja"
CRUISE_M = 20.0  # a low layer keeps the climbs short (the site's own layers are 40-70 m)
ZONE_RADIUS_M = 20.0


def drop_point() -> str:
    xy = SITE.depots[DEPOT].xy_m
    near = sorted((math.dist(xy, d.xy_m), n) for n, d in SITE.drop_points.items()
                  if d.drone_ok and 180.0 <= math.dist(xy, d.xy_m) <= 300.0)
    return near[0][1]


class Track:
    """Every snapshot after the new mission went up: modes, landed states, and how close the quad
    came to the zone."""

    def __init__(self, zone: NoFlyZone) -> None:
        self.zone = zone
        self.modes: set[str] = set()
        self.landed: list[LandedState] = []
        self.landed_at: list[tuple[str, float, int, bool]] = []  # for the failure message
        self.closest_m = math.inf

    def see(self, state: VehicleState) -> None:
        self.modes.add(state.mode)
        if not self.landed or self.landed[-1] != state.landed:
            self.landed.append(state.landed)
            alt_m = state.position.alt_rel_m if state.position is not None else math.nan
            self.landed_at.append((state.landed.value, round(alt_m, 1), state.mission.current, state.armed))
        if state.position is not None and self.zone.circle is not None:
            x, y = SITE.frame.to_local(state.position.lat_deg, state.position.lon_deg)
            cx, cy, r = self.zone.circle
            self.closest_m = min(self.closest_m, math.dist((x, y), (cx, cy)) - r)

    async def follow(self, vehicle: MavsdkVehicle) -> None:
        async with contextlib.aclosing(vehicle.states()) as states:
            async for state in states:
                self.see(state)


async def test_a_quad_flies_the_rerouted_mission_uploaded_in_flight(sitl_options: SitlChoice) -> None:
    depot = SITE.depots[DEPOT]
    pad = depot.pads[0].position
    async with fleet_under_test(sitl_options, ["quad"], homes=[(pad.lat_deg, pad.lon_deg, pad.alt_amsl_m)],
                                vehicle_ids=["quad-1"]) as env:
        quad = env.vehicles[0]
        flight = FlightPlanner(SITE.airspace, max_alt_m=max(SITE.cruise_layers_m))
        drop = SITE.drop_points[drop_point()]
        slot = VehicleSlot("quad-1", SITE.vehicle_model("quad-x4"), DEPOT, depot.pads[0].xy_m, 100.0)
        plan = plan_sortie(SITE, flight, "order-zone", drop.xy_m, slot, 1.0, cruise_alt_m=CRUISE_M)
        items, _ = mission(plan)
        await quad.upload_geofence(fence_for(SITE, SITE.airspace, plan))
        await quad.upload_mission(items)
        await quad.start_mission()
        # Cruising out (take-off done): the operator closes the airspace ahead of it.
        state = await quad.wait_for(lambda s: s.mission.total == plan.mission_total and s.mission.current >= 2,
                                    90.0, "cruising out")
        out = shapely.LineString(SITE.frame.points_to_local(plan.out_wgs84))
        centre = out.interpolate(0.6, normalized=True)
        zone = NoFlyZone.make_circle("heli", "emergency helicopter", centre.x, centre.y, ZONE_RADIUS_M)
        flight.add_zone(zone)
        airspace = flight.airspace
        assert state.position is not None
        here = (state.position.lat_deg, state.position.lon_deg)
        assert affected(SITE, airspace, plan, state.mission.current, here)
        new = reroute(SITE, flight, airspace, plan, position=(*here, state.position.alt_rel_m),
                      current_seq=state.mission.current, delivered=False)
        assert new.plan.mission_total != plan.mission_total  # so MISSION_CURRENT tells them apart
        track = Track(zone)
        async with asyncio.TaskGroup() as tg:
            follow = tg.create_task(track.follow(quad), name="track")
            await quad.clear_geofence()
            await quad.upload_mission(new.items)
            switched = await quad.wait_for(lambda s: s.mission.total == new.plan.mission_total, 10.0,
                                           "the new mission in force")
            # Flown from item 0 at once: DO_CHANGE_SPEED (0) completes at once and the waypoint where it
            # was (1) within its acceptance radius, so the first report may already show the leg after.
            assert switched.mission.current <= 2
            assert switched.armed
            assert switched.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF)
            await quad.wait_for(lambda s: s.mission.current >= new.fence_from_seq, 30.0, "clear of every zone")
            await quad.upload_geofence(fence_for(SITE, airspace, new.plan))
            end = await quad.wait_for(
                lambda s: not s.armed and s.mission.state == MissionState.COMPLETE,
                2.0 * new.plan.round_trip_s + 120.0, "landed at home")
            follow.cancel()
        track.see(end)  # the follower may not have taken the last snapshot yet
        assert track.modes == {"MISSION"}, track.modes  # no Hold, no RTL: the new mission all the way
        # No landing on the way to the drop point. (Real PX4 SIH sinks to ~1 m and reports ON_GROUND,
        # still armed, in the release hold over the drop, replanned or not: not this test's concern.)
        early = [seen for seen in track.landed_at if seen[0] == "on_ground" and seen[2] < new.plan.drop_seq]
        assert not early, track.landed_at
        assert track.closest_m > 0.0, track.closest_m  # never inside the zone
        assert end.mission.current == new.plan.mission_total - 1
        assert distance_to(end, pad.lat_deg, pad.lon_deg) < 3.0
        assert env.backend != "builtin" or env.sim_vehicle(0).payload_released


async def test_a_fence_that_voids_the_mission_in_flight_stops_it(sitl_options: SitlChoice) -> None:
    """Why the order above matters: a fence that makes the mission being flown infeasible (PX4 checks
    every waypoint against each new fence) leaves it without a valid mission: "No valid mission
    available, loitering", and PX4 holds where it is (AUTO.LOITER), as observed on PX4 SITL."""
    depot = SITE.depots[DEPOT]
    pad = depot.pads[0].position
    async with fleet_under_test(sitl_options, ["quad"], homes=[(pad.lat_deg, pad.lon_deg, pad.alt_amsl_m)],
                                vehicle_ids=["quad-1"]) as env:
        quad = env.vehicles[0]
        target = offset(pad.lat_deg, pad.lon_deg, 150.0, 0.0)
        await quad.upload_mission([TakeOff(10.0), Waypoint(*target, 10.0), Land(*target)])
        await quad.start_mission()
        await quad.wait_for(lambda s: s.mission.current >= 1, 60.0, "flying out")
        corners = ((-400.0, -400.0), (-400.0, 400.0), (400.0, 400.0), (400.0, -400.0))
        area = [offset(pad.lat_deg, pad.lon_deg, n, e) for n, e in corners]
        await quad.upload_geofence([InclusionPolygon(tuple(area)), ExclusionCircle(*target, 20.0)])
        state = await quad.wait_for(lambda s: s.mode == "HOLD", 15.0, "Hold without a valid mission")
        assert state.armed
        # PX4 reports the mission state in its 1 Hz MISSION_CURRENT: it may come a little after the mode.
        await quad.wait_for(lambda s: s.mission.state == MissionState.NO_MISSION, 5.0, "no valid mission reported")
