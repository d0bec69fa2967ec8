"""The Vehicle contract, flown: MavsdkFleet on one UDP port against the built-in simulator, or real
PX4 SITL with `pytest --sitl px4 --px4-dir PATH`. Timeouts are in vehicle seconds (the fleet divides
them by the speed factor)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from vehicles_harness import (
    FleetUnderTest,
    SitlChoice,
    distance_m,
    distance_to,
    fleet_under_test,
    offset,
    require_builtin,
)

from vehicles.base import (
    Delay,
    EventKind,
    ExclusionCircle,
    InclusionPolygon,
    Land,
    LandedState,
    MissionState,
    PayloadRelease,
    TakeOff,
    Vehicle,
    VehicleEvent,
    Waypoint,
)
from vehicles.errors import CommandRejected, LinkLost, MissionInvalid, UnknownVehicle
from vehicles.mavsdk_backend import MavsdkVehicle

pytestmark = pytest.mark.sitl

FLIGHT_TIMEOUT_S = 400.0


def _home_of(env: FleetUnderTest, i: int) -> tuple[float, float]:
    return env.specs[i].home_lat_deg, env.specs[i].home_lon_deg


async def _airborne_on_mission(vehicle: MavsdkVehicle, lat: float, lon: float, north_m: float = 150.0) -> None:
    """Take off on a mission with one far waypoint, and wait until it is cruising to it."""
    far = offset(lat, lon, north_m, 0.0)
    await vehicle.upload_mission([TakeOff(15), Waypoint(*far, 15), Land(*far)])
    await vehicle.start_mission()
    await vehicle.wait_for(lambda s: s.mission.current >= 1 and s.landed == LandedState.IN_AIR, 120,
                           "airborne, heading for the waypoint")


async def _events_until(events: AsyncIterator[VehicleEvent], kinds: set[EventKind],
                        timeout_s: float) -> list[VehicleEvent]:
    """Events (already queued ones first) until every kind in `kinds` was seen."""
    seen: list[VehicleEvent] = []
    async with asyncio.timeout(timeout_s):
        async for event in events:
            seen.append(event)
            if kinds <= {e.kind for e in seen}:
                return seen
    raise AssertionError("event stream ended")


async def test_fleet_discovers_quads_and_rover_on_one_port(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad", "quad", "rover"]) as env:
        fleet = env.fleet
        assert sorted(fleet.vehicles) == [v.sysid for v in env.sim.vehicles]
        assert [v.kind for v in env.vehicles] == ["drone", "drone", "rover"]
        assert [v.vehicle_id for v in env.vehicles] == ["quad-0", "quad-1", "rover-2"]
        assert await fleet.vehicle("rover-2") is env.vehicles[2]
        # discoveries() replays the vehicles already heard
        seen = []
        async with asyncio.timeout(2):
            async for v in fleet.discoveries():
                seen.append(v.sysid)
                if len(seen) == 3:
                    break
        assert sorted(seen) == sorted(fleet.vehicles)
        for i, vehicle in enumerate(env.vehicles):
            assert isinstance(vehicle, Vehicle)
            s = vehicle.state
            assert s.link_alive
            assert s.heartbeat_age_s < 3.0
            assert not s.armed
            assert s.mode == "HOLD"
            assert s.position is not None
            assert s.home is not None
            assert distance_to(s, *_home_of(env, i)) < 5.0
            assert abs(s.position.alt_amsl_m - env.specs[i].home_alt_amsl_m) < 5.0
            assert abs(s.position.alt_rel_m) < 2.0
            assert s.battery_percent is not None
            assert 50.0 < s.battery_percent <= 100.0
            assert s.battery_voltage_v is not None
            assert s.battery_voltage_v > 5.0
            assert s.health.ok
            assert s.health.failing == ()
            assert s.landed == LandedState.ON_GROUND
            assert s.velocity is not None
            assert math.hypot(s.velocity.north_m_s, s.velocity.east_m_s) < 0.5
        # the change stream starts with the current snapshot
        async with asyncio.timeout(2):
            first = await anext(env.vehicles[0].states())
        assert first.vehicle_id == "quad-0"
        assert first.position is not None
        with pytest.raises(UnknownVehicle):
            await fleet.vehicle(42, timeout_s=1.0)


async def test_drone_mission_flies_to_completion(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        lat, lon = _home_of(env, 0)
        wp1, wp2 = offset(lat, lon, 40.0, 0.0), offset(lat, lon, 40.0, 30.0)
        events = drone.events()
        await drone.upload_mission([TakeOff(15), Waypoint(*wp1, 15, speed_m_s=8.0), Delay(2),
                                    Waypoint(*wp2, 15), PayloadRelease(), Land(*wp2)])
        await drone.start_mission()  # disarmed: PX4 arms by itself on MISSION_START
        assert drone.state.armed
        assert drone.state.mode == "MISSION"
        final = await drone.wait_for(
            lambda s: s.mission.state == MissionState.COMPLETE and not s.armed, FLIGHT_TIMEOUT_S, "mission done")
        assert final.mission.total == 7  # a speed change item precedes the first waypoint
        assert distance_to(final, *wp2) < 5.0
        assert final.position is not None
        # (1.5 m: PX4 corrects home's altitude in flight for 120 s after take-off, by up to ~1 m in
        # SIH, and the relative altitude of a landed quad moves with it)
        assert final.position.alt_rel_m < 1.5
        wanted = {EventKind.ARMED, EventKind.MISSION_ITEM, EventKind.MISSION_COMPLETE, EventKind.DISARMED}
        seen = await _events_until(events, wanted, 5.0)
        assert [e.detail for e in seen if e.kind == EventKind.MISSION_ITEM][-1] == "6/7"


async def test_rover_drives_a_waypoint_mission_and_refuses_to_land(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["rover"]) as env:
        rover = env.vehicles[0]
        lat, lon = _home_of(env, 0)
        a, b = offset(lat, lon, 25.0, 0.0), offset(lat, lon, 25.0, 20.0)
        with pytest.raises(MissionInvalid, match="Land"):
            await rover.upload_mission([Waypoint(*a, 0), Land(*b)])
        await rover.upload_mission([Waypoint(*a, 0), Waypoint(*b, 0, acceptance_m=1.0)])
        await rover.arm()
        await rover.start_mission()
        await rover.wait_for(lambda s: s.mission.state == MissionState.COMPLETE, FLIGHT_TIMEOUT_S, "drive done")
        # position is sampled, the mission state streamed: give the sample a moment to catch up
        await rover.wait_for(lambda s: distance_to(s, *b) < 3.0, 10, "stopped at the last waypoint")
        # PX4's rover ends a mission holding, still armed: the ground side disarms it
        settled = await rover.wait_for(lambda s: s.mode == "HOLD", 30, "hold after the drive")
        assert settled.armed
        await rover.disarm()
        assert not rover.state.armed


async def test_fence_violating_mission_is_refused_at_start_with_px4_reason(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        lat, lon = _home_of(env, 0)
        square = tuple(offset(lat, lon, n, e) for n, e in ((-100, -100), (-100, 100), (100, 100), (100, -100)))
        await drone.upload_geofence([InclusionPolygon(square), ExclusionCircle(*offset(lat, lon, -60, 60), 15)])
        outside = offset(lat, lon, 300.0, 0.0)
        # PX4 accepts the upload (and complains in a STATUSTEXT) ...
        await drone.upload_mission([TakeOff(15), Waypoint(*outside, 15), Land(*outside)])
        # ... and refuses to start it, with the reason it gave at the upload and at the start
        with pytest.raises(CommandRejected) as refused:
            await drone.start_mission()
        assert refused.value.result == "DENIED"
        assert "geofence violation for waypoint" in refused.value.reason.lower()
        assert "mission start denied" in refused.value.reason.lower()
        assert not drone.state.armed
        # a mission inside the fence is fine again
        inside = offset(lat, lon, 30.0, 0.0)
        await drone.upload_mission([TakeOff(10), Waypoint(*inside, 10), Land(*inside)])
        await drone.start_mission()
        await drone.pause()
        await drone.clear_geofence()
        await drone.land()


async def test_pause_holds_and_resume_continues(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        await _airborne_on_mission(drone, *_home_of(env, 0))
        await drone.pause()
        paused = await drone.wait_for(lambda s: s.mission.state == MissionState.PAUSED, 10, "mission paused")
        assert paused.mode == "HOLD"
        await asyncio.sleep(env.fleet.wall_s(5.0, floor_s=0.3))  # let it stop
        here = drone.state
        await asyncio.sleep(env.fleet.wall_s(5.0, floor_s=0.3))
        assert here.position is not None
        assert distance_to(drone.state, here.position.lat_deg, here.position.lon_deg) < 3.0
        await drone.resume()
        assert drone.state.mode == "MISSION"
        moving = await drone.wait_for(
            lambda s: s.velocity is not None and math.hypot(s.velocity.north_m_s, s.velocity.east_m_s) > 1.0,
            30, "moving again")
        assert moving.mission.current == paused.mission.current  # resumed the same item


async def test_return_to_launch_lands_at_home(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        lat, lon = _home_of(env, 0)
        await _airborne_on_mission(drone, lat, lon, north_m=120.0)
        await drone.wait_for(lambda s: distance_to(s, lat, lon) > 25.0, 60, "away from home")
        await drone.return_to_launch()
        assert drone.state.mode == "RTL"
        landed = await drone.wait_for(lambda s: not s.armed, FLIGHT_TIMEOUT_S, "back and disarmed")
        assert landed.home is not None
        assert distance_to(landed, landed.home.lat_deg, landed.home.lon_deg) < 3.0


async def test_goto_then_land_and_payload_release(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        lat, lon = _home_of(env, 0)
        await _airborne_on_mission(drone, lat, lon)
        target = offset(lat, lon, -30.0, 30.0)
        await drone.goto(*target, 12.0)
        assert drone.state.mode == "HOLD"
        there = await drone.wait_for(lambda s: distance_to(s, *target) < 3.0, 120, "at the goto point")
        assert there.position is not None
        assert abs(there.position.alt_rel_m - 12.0) < 3.0
        await drone.release_payload()
        if env.backend == "builtin":
            env.sim_vehicle(0).faults.gripper_jam(True)
            with pytest.raises(CommandRejected) as jammed:
                await drone.release_payload()
            assert jammed.value.result == "FAILED"
        await drone.land()
        assert drone.state.mode == "LAND"
        down = await drone.wait_for(lambda s: not s.armed, 120, "landed and disarmed")
        assert distance_to(down, *target) < 3.0
        assert down.landed == LandedState.ON_GROUND


async def test_refused_arm_raises_command_rejected_with_reason(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "refuse_arm")
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        env.sim_vehicle(0).faults.refuse_arm("test says no")
        with pytest.raises(CommandRejected) as refused:
            await drone.arm()
        assert refused.value.command == "arm"
        assert "Arming denied: test says no" in refused.value.reason
        assert not drone.state.armed
        env.sim_vehicle(0).faults.refuse_arm(None)
        await drone.arm()
        assert drone.state.armed
        await drone.disarm()


async def test_mode_that_px4_acks_but_does_not_take_is_rejected(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        # AUTO.READY: PX4 answers ACCEPTED and stays where it is (px4-notes)
        with pytest.raises(CommandRejected) as refused:
            await drone.set_mode("AUTO_READY")
        assert refused.value.result == "NOT_TAKEN"
        assert drone.state.mode == "HOLD"


async def test_link_loss_is_detected_and_state_resynchronised(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "link_loss")
    async with fleet_under_test(sitl_options, ["quad", "rover"]) as env:
        drone, rover = env.vehicles
        sim = env.sim_vehicle(0)
        await _airborne_on_mission(drone, *_home_of(env, 0), north_m=120.0)
        events = drone.events()
        outage_s = 40.0  # vehicle seconds: longer than PX4's COM_DL_LOSS_T (10 s)
        sim.faults.link_loss(outage_s)
        lost = await drone.wait_for(lambda s: not s.link_alive, 30, "link lost", fail_on_link_loss=False)
        assert lost.heartbeat_age_s > 0.5 * env.fleet.wall_s(3.0)
        assert rover.state.link_alive  # the other vehicle on the same port is unaffected
        with pytest.raises(LinkLost):
            await drone.pause()
        seen = await _events_until(events, {EventKind.LINK_LOST, EventKind.LINK_RESTORED},
                                   env.fleet.wall_s(outage_s) + 10)
        kinds = [e.kind for e in seen]
        assert kinds.index(EventKind.LINK_LOST) < kinds.index(EventKind.LINK_RESTORED)
        truth = sim.snapshot()
        # PX4's data-link-loss failsafe sent it home while we could not hear it
        assert truth.mode_name == "AUTO.RTL"
        back = await drone.wait_for(
            lambda s: s.mode == "RTL" and s.mission.state == MissionState.PAUSED, 10, "resynchronised")
        assert back.mission.current == truth.mission_seq
        assert back.mission.total == truth.mission_total
        assert back.heartbeat_age_s < 2.0
        assert back.home is not None
        assert distance_m(back.home.lat_deg, back.home.lon_deg, truth.home_lat_deg, truth.home_lon_deg) < 1.0
        now = sim.snapshot()  # it flies home at ~50 m per wall second: compare with a fresh truth
        assert back.position is not None
        assert distance_m(back.position.lat_deg, back.position.lon_deg, now.lat_deg, now.lon_deg) < 30.0
        assert [e.detail for e in seen if e.kind == EventKind.MODE_CHANGED][-1] == "MISSION->RTL"


async def test_set_param(sitl_options: SitlChoice) -> None:
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone = env.vehicles[0]
        await drone.set_param("MPC_XY_CRUISE", 7.5)
        await drone.set_param("COM_DISARM_LAND", 3.0)  # REAL32 on PX4
        assert await drone.get_param("MPC_XY_CRUISE") == 7.5
        assert await drone.get_param("COM_DISARM_LAND") == 3.0
        if env.backend == "builtin":
            params = env.sim_vehicle(0).params
            assert params.get("MPC_XY_CRUISE") == 7.5
            assert params.get("COM_DISARM_LAND") == 3.0
        with pytest.raises(CommandRejected) as rejected:
            await drone.set_param("NO_SUCH_PARAM", 1)
        assert rejected.value.result == "UNKNOWN_PARAM"
        assert "NO_SUCH_PARAM" in rejected.value.reason  # PX4 answers PARAM_ERROR DOES_NOT_EXIST for it
