"""COMMAND_ACKs, modes and identity of a simulated vehicle, against what real PX4 answered."""

from __future__ import annotations

import asyncio

import pytest
from mavclient import HOME, MavClient, quad, rover, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import offset_wgs84
from sitl.modes import Mode

ACCEPTED, TEMP_REJECTED, DENIED, UNSUPPORTED, FAILED, IN_PROGRESS = 0, 1, 2, 3, 4, 5
UNSUPPORTED_FRAME = 9


async def _hb_mode(c: MavClient, mode: int, timeout_s: float = 5.0) -> m.MAVLink_heartbeat_message:
    return await c.heartbeat_of(1, lambda h: h.custom_mode == mode, timeout_s)


async def test_identity_heartbeat_and_streams(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0) as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        hb = await c.connected()
        assert (hb.type, hb.autopilot, hb.base_mode, hb.custom_mode, hb.system_status, hb.mavlink_version) == (
            2, 12, 29, 0x03040000, 3, 3)
        assert hb.get_srcSystem() == 1
        assert hb.get_srcComponent() == 1
        mark = c.mark()
        t0 = fleet.now_s()
        await asyncio.sleep(1.0)
        sim_s = fleet.now_s() - t0
        got = c.since(mark)
        rates = {k: sum(1 for x in got if x.get_type() == k) / sim_s for k in ("ATTITUDE", "GLOBAL_POSITION_INT",
                                                                              "HEARTBEAT", "SYS_STATUS")}
        assert 85 <= rates["ATTITUDE"] <= 110
        assert 42 <= rates["GLOBAL_POSITION_INT"] <= 56
        assert 0.7 <= rates["HEARTBEAT"] <= 1.3
        assert 4 <= rates["SYS_STATUS"] <= 6
        sys_status = await c.wait_type("SYS_STATUS", 2)
        assert sys_status.voltage_battery == 16200
        assert sys_status.onboard_control_sensors_health == 320915519
        ext = await c.wait_type("EXTENDED_SYS_STATE", 2)
        assert ext.landed_state == 1
        gpi = await c.wait_type("GLOBAL_POSITION_INT", 2)
        assert abs(gpi.lat * 1e-7 - HOME[0]) < 1e-6
        assert abs(gpi.alt / 1000 - HOME[2]) < 0.1


async def test_request_message_before_ack_and_available_modes(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=10.0, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        mark = c.mark()
        ack = await c.command_long(1, m.MAV_CMD_REQUEST_MESSAGE, [148])
        assert ack.result == ACCEPTED
        kinds = [x.get_type() for x in c.since(mark) if x.get_type() in ("AUTOPILOT_VERSION", "COMMAND_ACK")]
        assert kinds[:2] == ["AUTOPILOT_VERSION", "COMMAND_ACK"]
        version = next(x for x in c.since(mark) if x.get_type() == "AUTOPILOT_VERSION")
        assert version.capabilities == 0xE8FF
        mark = c.mark()
        ack = await c.command_long(1, m.MAV_CMD_REQUEST_MESSAGE, [435, 0])
        assert ack.result == ACCEPTED
        listed = [x for x in c.since(mark) if x.get_type() == "AVAILABLE_MODES"]
        assert len(listed) == 26
        assert {x.custom_mode for x in listed} >= {Mode.LOITER, Mode.MISSION, Mode.RTL}
        ack = await c.command_long(1, m.MAV_CMD_REQUEST_MESSAGE, [242])
        assert ack.result == ACCEPTED
        home = await c.wait_type("HOME_POSITION", 2, since=mark)
        assert abs(home.latitude * 1e-7 - HOME[0]) < 1e-6


async def test_set_mode_two_acks_and_status(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        expected = [  # (main, sub) -> (custom_mode, base_mode, system_status), as the profile shows
            ((3, 0), (Mode.POSCTL, 81, 0)),
            ((4, 4), (Mode.MISSION, 29, 0)),
            ((4, 5), (Mode.RTL, 29, 0)),
            ((4, 6), (Mode.LAND, 29, 0)),
            ((4, 3), (Mode.LOITER, 29, 3)),
        ]
        for (main, sub), (mode, base, status) in expected:
            mark = c.mark()
            ack = await c.set_mode(1, main, sub)
            assert ack.result == ACCEPTED
            await asyncio.sleep(0.05)
            acks = [x for x in c.since(mark) if x.get_type() == "COMMAND_ACK"]
            assert [a.result for a in acks] == [ACCEPTED, ACCEPTED]
            hb = await _hb_mode(c, mode)
            assert (hb.base_mode, hb.system_status) == (base, status)
        ack = await c.set_mode(1, 4, 1)  # AUTO.READY: accepted, not taken
        assert ack.result == ACCEPTED
        await asyncio.sleep(0.3)
        assert fleet.vehicles[0].mode == Mode.LOITER


async def test_command_results(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        await c.heartbeat_of(1, lambda h: True, 3)  # the vehicle has heard our GCS heartbeat by now
        ack = await c.command_long(1, m.MAV_CMD_MISSION_START)
        assert ack.result == DENIED
        await c.wait_text("Mission start denied! No valid mission", 2)
        for cmd in (m.MAV_CMD_DO_PAUSE_CONTINUE, m.MAV_CMD_DO_SET_MISSION_CURRENT, m.MAV_CMD_DO_FENCE_ENABLE,
                    m.MAV_CMD_NAV_LOITER_UNLIM, 31999):
            assert (await c.command_long(1, cmd)).result == UNSUPPORTED, cmd
        assert (await c.command_long(1, m.MAV_CMD_DO_CHANGE_SPEED, [1, 8, -1])).result == ACCEPTED
        ack = await c.command_int(1, m.MAV_CMD_NAV_TAKEOFF, 6, z=20.0)
        assert ack.result == UNSUPPORTED_FRAME
        ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 0, x=int(HOME[0] * 1e7), y=int(HOME[1] * 1e7), z=500)
        assert ack.result == UNSUPPORTED_FRAME
        ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, float("nan")],
                                  x=int(HOME[0] * 1e7), y=int(HOME[1] * 1e7), z=500)
        assert ack.result == ACCEPTED
        assert not fleet.vehicles[0].armed
        # gripper: IN_PROGRESS with progress 255 at once, ACCEPTED ~1.04 s (sim) later
        mark = c.mark()
        t0 = fleet.now_s()
        first = await c.command_long(1, m.MAV_CMD_DO_GRIPPER, [1, 0], final=False)
        assert (first.result, first.progress) == (IN_PROGRESS, 255)
        final = await c.wait_type("COMMAND_ACK", 3, lambda a: a.command == 211 and a.result != 5, since=mark)
        assert final.result == ACCEPTED
        assert 0.9 <= fleet.now_s() - t0 <= 1.6
        # takeoff while disarmed: ACCEPTED, mode AUTO.TAKEOFF, stays disarmed
        ack = await c.command_long(1, m.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, float("nan"), float("nan"), float("nan"),
                                                              HOME[2] + 20])
        assert ack.result == ACCEPTED
        hb = await _hb_mode(c, Mode.TAKEOFF)
        assert (hb.base_mode, hb.system_status) == (29, 3)


async def test_arm_disarm_texts_and_refusals(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        await c.heartbeat_of(1, lambda h: True, 3)
        v = fleet.vehicles[0]
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        hb = await c.heartbeat_of(1, lambda h: h.base_mode & 0x80, 3)
        assert (hb.base_mode, hb.system_status) == (157, 4)
        await c.wait_text("Armed by external command", 2)
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [0])).result == ACCEPTED
        await c.wait_text("Disarmed by external command", 2)
        v.faults.refuse_arm("Compass not calibrated")
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == TEMP_REJECTED
        await c.wait_text("Arming denied: Compass not calibrated", 2)
        v.faults.refuse_arm(None)
        v.faults.gps_loss(30.0)
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == TEMP_REJECTED
        await c.wait_text("GPS", 2)
        gps = await c.wait_type("GPS_RAW_INT", 3)
        assert gps.fix_type == 0
        assert not v.armed


async def test_statustext_only_to_gcs_peers_and_chunked(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base, mav_type=m.MAV_TYPE_ONBOARD_CONTROLLER) as onboard:
        await onboard.connected()
        await asyncio.sleep(0.3)
        assert (await onboard.command_long(1, m.MAV_CMD_MISSION_START)).result == DENIED
        await asyncio.sleep(0.3)
        assert onboard.counts.get("STATUSTEXT", 0) == 0
        v = fleet.vehicles[0]
        onboard.mav_type = m.MAV_TYPE_GCS
        await asyncio.sleep(1.2)
        mark = onboard.mark()
        v.statustext("RTL: start return at 549 m (60 m above destination)\t")
        await onboard.wait_text("(60 m above destination)", 2)
        chunks = [x for x in onboard.since(mark) if x.get_type() == "STATUSTEXT"]
        assert [x.chunk_seq for x in chunks] == [0, 1]
        assert chunks[0].id == chunks[1].id
        assert len(chunks[0].text) == 50


async def test_mission_start_arms_and_outside_fence_denied(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=20.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        await c.heartbeat_of(1, lambda h: True, 3)
        lat, lon, _ = HOME
        a = offset_wgs84(lat, lon, 20, 0)
        fence = [waypoint(i, *offset_wgs84(lat, lon, dn, de), 0, command=5001, params=(4,), frame=5, mission_type=1)
                 for i, (dn, de) in enumerate([(100, -100), (100, 100), (-100, 100), (-100, -100)])]
        assert await c.upload(1, fence, mission_type=1) == 0
        outside = offset_wgs84(lat, lon, 400, 0)
        assert await c.upload(1, [waypoint(0, *a, 0), waypoint(1, *outside, 0)]) == 0
        await c.wait_text("Geofence violation for waypoint 2", 2)
        cur = await c.wait_type("MISSION_CURRENT", 3)
        assert (cur.total, cur.mission_state) == (2, 1)  # infeasible: NO_MISSION, with its count
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == DENIED
        await c.wait_text("Mission start denied! No valid mission", 2)
        # PX4 ACKs the upload before its navigator checked the mission: a MISSION_START at once is
        # DENIED, and ACCEPTED once MISSION_CURRENT reports the mission checked.
        mark = c.mark()
        assert await c.upload(1, [waypoint(0, *a, 0)]) == 0
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == DENIED
        assert not fleet.vehicles[0].armed
        await c.mission_checked(1, 1)
        assert [x.mission_state for x in c.since(mark, "MISSION_CURRENT")][-1] == 2  # NOT_STARTED
        ack = await c.command_long(1, m.MAV_CMD_MISSION_START)
        assert ack.result == ACCEPTED
        await c.wait_text("Armed by mission start", 2)
        await _hb_mode(c, Mode.MISSION)
        assert fleet.vehicles[0].armed


@pytest.mark.parametrize("speed", [5.0, 20.0])
async def test_speed_factor_scales_time(sim_fleet_factory, speed: float) -> None:
    async with sim_fleet_factory([quad()], speed_factor=speed, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        first = await c.wait_type("GLOBAL_POSITION_INT", 2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(0.5)
        last = await c.wait_type("GLOBAL_POSITION_INT", 2)
        wall = loop.time() - t0
        boot_s = (last.time_boot_ms - first.time_boot_ms) / 1000
        assert boot_s / wall == pytest.approx(speed, rel=0.25)
