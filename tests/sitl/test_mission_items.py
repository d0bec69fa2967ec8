"""Mission items beyond waypoints, parameters, preflight disarm and message intervals."""

from __future__ import annotations

import asyncio
import struct

from mavclient import HOME, MavClient, quad, rover, until, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import haversine_m, offset_wgs84
from sitl.modes import Mode

SPEED = 20.0
ACCEPTED = 0


async def test_gripper_speed_delay_and_rtl_items(sim_fleet_factory) -> None:
    lat, lon, _ = HOME
    a = offset_wgs84(lat, lon, 60, 0)
    b = offset_wgs84(lat, lon, 60, 150)
    items = [
        waypoint(0, lat, lon, 15, command=22),
        waypoint(1, *a, 15),
        waypoint(2, 0, 0, 0, command=211, params=(1, 0), frame=2),  # DO_GRIPPER release
        waypoint(3, 0, 0, 0, command=178, params=(1, 9.0, -1), frame=2),  # DO_CHANGE_SPEED 9 m/s
        waypoint(4, 0, 0, 0, command=93, params=(6.0, -1, -1, -1), frame=2),  # NAV_DELAY 6 s
        waypoint(5, *b, 15),
        waypoint(6, 0, 0, 0, command=20, frame=2),  # NAV_RETURN_TO_LAUNCH
    ]
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert await c.upload(1, items) == 0
        await c.mission_checked(1, len(items))
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == ACCEPTED
        await c.wait_type("MISSION_CURRENT", 20, lambda x: x.seq == 4)
        assert v.snapshot().payload_released
        t_delay = fleet.now_s()
        await c.wait_type("MISSION_CURRENT", 5, lambda x: x.seq == 5)
        assert 5.0 < fleet.now_s() - t_delay < 8.0
        speeds = []
        mark = c.mark()
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.RTL, 20)
        speeds = [x.groundspeed for x in c.since(mark, "VFR_HUD")]
        assert max(speeds) > 8.5  # DO_CHANGE_SPEED 9 m/s applied to the next leg
        await c.wait_text("Disarmed by landing", 20)
        snap = v.snapshot()
        assert haversine_m(snap.lat_deg, snap.lon_deg, lat, lon) < 1.0


async def test_preflight_auto_disarm(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        t0 = fleet.now_s()
        await c.wait_text("Disarmed by auto preflight disarming", 3)
        assert 9.5 < fleet.now_s() - t0 < 11.5  # COM_DISARM_PRFLT 10 s
        assert not v.armed


async def test_rover_never_auto_disarms_on_the_ground(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        await asyncio.sleep(0.8)  # 16 s sim
        assert fleet.vehicles[0].armed


def _param_float(value: float, ptype: int) -> float:
    if ptype == m.MAV_PARAM_TYPE_INT32:
        return float(struct.unpack("<i", struct.pack("<f", value))[0])
    return value


async def test_parameter_protocol(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        mark = c.mark()
        c.send(m.MAVLink_param_request_read_message(1, 1, b"MIS_TAKEOFF_ALT", -1))
        pv = await c.wait_type("PARAM_VALUE", 2, since=mark)
        assert (pv.param_id, pv.param_value, pv.param_type) == ("MIS_TAKEOFF_ALT", 2.5, m.MAV_PARAM_TYPE_REAL32)
        mark = c.mark()
        c.send(m.MAVLink_param_request_read_message(1, 1, b"COM_DL_LOSS_T", -1))
        pv = await c.wait_type("PARAM_VALUE", 2, since=mark)
        assert _param_float(pv.param_value, pv.param_type) == 10  # INT32 sent bytewise, as PX4
        mark = c.mark()
        c.send(m.MAVLink_param_set_message(1, 1, b"MPC_XY_CRUISE", 8.0, m.MAV_PARAM_TYPE_REAL32))
        pv = await c.wait_type("PARAM_VALUE", 2, since=mark)
        assert pv.param_value == 8.0
        assert fleet.vehicles[0].navigator.cruise_m_s == 8.0
        mark = c.mark()
        c.send(m.MAVLink_param_request_list_message(1, 1))
        await asyncio.sleep(0.3)
        listed = c.since(mark, "PARAM_VALUE")
        assert len(listed) == listed[0].param_count
        assert {p.param_index for p in listed} == set(range(listed[0].param_count))
        # Refusals as PX4 (mavlink_parameters.cpp): PARAM_ERROR to the sender, no PARAM_VALUE, no text.
        refusals = [
            (m.MAVLink_param_set_message(1, 1, b"NO_SUCH_PARAM", 1.0, m.MAV_PARAM_TYPE_REAL32),
             ("NO_SUCH_PARAM", -1, 1)),  # MAV_PARAM_ERROR_DOES_NOT_EXIST
            (m.MAVLink_param_request_read_message(1, 1, b"NO_SUCH_PARAM", -1), ("NO_SUCH_PARAM", -1, 1)),
            (m.MAVLink_param_request_read_message(1, 1, b"", 5000), ("", 5000, 1)),
        ]
        for request, (name, index, error) in refusals:
            mark = c.mark()
            c.send(request)
            err = await c.wait_type("PARAM_ERROR", 2, since=mark)
            assert (err.param_id, err.param_index, err.error) == (name, index, error)
            assert (err.target_system, err.target_component) == (c.mav.srcSystem, c.mav.srcComponent)
            await asyncio.sleep(0.1)
            assert c.since(mark, "PARAM_VALUE") == []
            assert c.since(mark, "STATUSTEXT") == []
        assert fleet.vehicles[0].navigator.cruise_m_s == 8.0


async def test_set_message_interval(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()

        async def gpi_rate() -> float:
            mark = c.mark()
            t0 = fleet.now_s()
            await asyncio.sleep(0.6)
            return len(c.since(mark, "GLOBAL_POSITION_INT")) / (fleet.now_s() - t0)

        ack = await c.command_long(1, m.MAV_CMD_SET_MESSAGE_INTERVAL, [33, 100_000])
        assert ack.result == ACCEPTED
        assert 8.0 < await gpi_rate() < 12.0  # real PX4: 9.8 Hz
        assert (await c.command_long(1, m.MAV_CMD_SET_MESSAGE_INTERVAL, [33, 0])).result == ACCEPTED
        assert 42.0 < await gpi_rate() < 56.0  # back to the default 50 Hz
        assert (await c.command_long(1, m.MAV_CMD_SET_MESSAGE_INTERVAL, [33, -1])).result == ACCEPTED
        await asyncio.sleep(0.1)
        assert await gpi_rate() == 0.0
        assert (await c.command_long(1, m.MAV_CMD_SET_MESSAGE_INTERVAL, [31999, 1000])).result != ACCEPTED


async def test_reposition_keeps_current_when_int32_max(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        nan = float("nan")
        assert (await c.command_long(1, m.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, nan, nan, nan, HOME[2] + 10])).result == 0
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 10)
        before = v.snapshot()
        ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, nan], x=2**31 - 1, y=2**31 - 1,
                                  z=HOME[2] + 25)
        assert ack.result == ACCEPTED
        await until(lambda: v.snapshot().rel_alt_m > 24.5, 5)
        after = v.snapshot()
        assert haversine_m(before.lat_deg, before.lon_deg, after.lat_deg, after.lon_deg) < 1.0
        assert after.custom_mode == Mode.LOITER
