"""A quad holds at the release height over the drop point for the whole of a mission Delay (the
sortie's release hold), without sinking or reporting itself landed, and flies on afterwards.

On PX4 a NAV_DELAY kept the position setpoint only until home moved (its altitude is corrected in
flight): navigator then re-derived the setpoint's altitude from the NAV_DELAY item, 0 m AMSL, and the
quad sank to the ground, armed, in its hold. `vehicles.px4` now sends a drone's Delay as a waypoint
with a hold time (see `mission_items`). Runs on the built-in simulator, or on real PX4 SITL with
`--sitl px4 --px4-dir BUILD`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import pytest
from vehicles_harness import SitlChoice, fleet_under_test, offset

from vehicles import px4
from vehicles.base import (
    Delay,
    Land,
    LandedState,
    MissionState,
    PayloadRelease,
    TakeOff,
    VehicleState,
    Waypoint,
)
from vehicles.mavsdk_backend import MavsdkVehicle

pytestmark = [pytest.mark.sitl]
CRUISE_M = 15.0
RELEASE_M = 10.0
HOLD_S = 10.0


class HoldTrack:
    """Relative altitude, landed state and armed flag while MISSION_CURRENT is the hold's seq."""

    def __init__(self, hold_seq: int) -> None:
        self.hold_seq = hold_seq
        self.samples: list[tuple[float, LandedState, bool]] = []
        self.first_s = self.last_s = math.nan  # wall clock of the first and last sample

    def see(self, state: VehicleState) -> None:
        if state.mission.current == self.hold_seq and state.mission.state == MissionState.ACTIVE:
            alt_m = state.position.alt_rel_m if state.position is not None else math.nan
            self.samples.append((alt_m, state.landed, state.armed))
            self.last_s = time.monotonic()
            if len(self.samples) == 1:
                self.first_s = self.last_s

    async def follow(self, vehicle: MavsdkVehicle) -> None:
        async with contextlib.aclosing(vehicle.states()) as states:
            async for state in states:
                self.see(state)


async def test_a_quad_holds_at_release_height_through_the_delay(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        vehicle = env.vehicles[0]
        spec = env.specs[0]
        home = (spec.home_lat_deg, spec.home_lon_deg)
        drop = offset(*home, 30.0, 0.0)
        items = [TakeOff(CRUISE_M), Waypoint(*drop, CRUISE_M), Waypoint(*drop, RELEASE_M), Delay(HOLD_S),
                 PayloadRelease(), Waypoint(*drop, CRUISE_M), Waypoint(*home, CRUISE_M), Land(*home)]
        raw = px4.mission_items(items, "drone", takeoff_at=home)
        hold_seq = px4.mission_seq_of_item(items, raw)[3]
        track = HoldTrack(hold_seq)
        await vehicle.upload_mission(items)
        async with asyncio.TaskGroup() as tg:
            follower = tg.create_task(track.follow(vehicle), name="follow-hold")
            await vehicle.arm()
            await vehicle.start_mission()
            await vehicle.wait_for(lambda s: s.mission.current > hold_seq, 120.0, "past the hold")
            follower.cancel()
        alts = [a for a, _, _ in track.samples]
        assert alts, "MISSION_CURRENT never showed the hold"
        held_s = (track.last_s - track.first_s) * env.speed_factor
        assert held_s > HOLD_S * 0.8, f"held only {held_s:.1f} s"
        # PX4 corrects home's altitude by up to ~1 m in flight, and alt_rel_m is relative to it
        assert min(alts) > RELEASE_M - 2.0, f"sank in the hold: {[round(a, 1) for a in alts]}"
        assert max(alts) < RELEASE_M + 3.0, f"climbed in the hold: {[round(a, 1) for a in alts]}"
        assert {landed for _, landed, _ in track.samples} == {LandedState.IN_AIR}
        assert all(armed for _, _, armed in track.samples)
