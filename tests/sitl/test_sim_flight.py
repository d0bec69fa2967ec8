"""Flights of the simulated vehicles, checked against the sequences real PX4 SIH showed."""

from __future__ import annotations

import asyncio

from mavclient import HOME, MavClient, quad, rover, until, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import haversine_m, offset_wgs84
from sitl.modes import Mode

SPEED = 20.0
ACCEPTED = 0
LANDED_ON_GROUND, LANDED_IN_AIR, LANDED_TAKEOFF, LANDED_LANDING = 1, 2, 3, 4


def _dedup(values: list) -> list:
    out: list = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


async def _record(c: MavClient, kind: str, field_fn, done, timeout_s: float) -> list:
    """Values of `field_fn(msg)` for messages of `kind` (vehicle 1) until `done()` holds."""
    seen: list = []
    mark = c.mark()
    async with asyncio.timeout(timeout_s):
        while not done():
            await asyncio.sleep(0.05)
            seen += [field_fn(x) for x in c.since(mark, kind) if x.get_srcSystem() == 1]
            mark = c.mark()
    return seen


async def test_quad_mission_flown_to_auto_disarm(sim_fleet_factory) -> None:
    lat, lon, _ = HOME
    n1 = offset_wgs84(lat, lon, 50, 0)
    n2 = offset_wgs84(lat, lon, 50, 100)
    items = [waypoint(0, lat, lon, 20, command=22), waypoint(1, *n1, 20), waypoint(2, *n2, 20),
             waypoint(3, *n2, 0, command=21)]
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert await c.upload(1, items) == 0
        await c.mission_checked(1, len(items))
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        t0 = fleet.now_s()
        mark = c.mark()
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == ACCEPTED
        landed = await _record(c, "EXTENDED_SYS_STATE", lambda x: x.landed_state, lambda: not v.armed, 30)
        duration = fleet.now_s() - t0
        await c.wait_type("EXTENDED_SYS_STATE", 2, lambda x: x.landed_state == LANDED_ON_GROUND)
        landed.append(LANDED_ON_GROUND)
        await asyncio.sleep(0.3)
        got = c.since(mark)
        current = _dedup([(x.seq, x.total, x.mission_state) for x in got if x.get_type() == "MISSION_CURRENT"])
        reached = [x.seq for x in got if x.get_type() == "MISSION_ITEM_REACHED"]
        texts = [t for _, t in c.status.texts]
        assert _dedup(landed) == [LANDED_ON_GROUND, LANDED_TAKEOFF, LANDED_IN_AIR, LANDED_LANDING, LANDED_ON_GROUND]
        assert current[-1] == (3, 4, 5)
        assert [s for s, _, st in current if st == 3] == [0, 1, 2, 3]
        assert _dedup(reached) == [0, 1, 2, 3]
        assert reached.count(0) == 11  # once, then 10 more at 1 Hz
        for expected in ("Executing Mission", "Climb to 20.0 meters above home", "Takeoff detected",
                         "Landing detected", "Mission finished, landed", "Disarmed by landing"):
            assert any(expected in t for t in texts), expected
        assert texts.index("Mission finished, landed\t") < texts.index("Disarmed by landing\t")
        snap = v.snapshot()
        assert snap.custom_mode == Mode.MISSION  # stays in Mission after the landing disarm
        assert haversine_m(snap.lat_deg, snap.lon_deg, *n2) < 2.0
        assert 55.0 < duration < 110.0  # real PX4: 83 s


async def test_rover_drive_ends_in_hold_armed(sim_fleet_factory) -> None:
    lat, lon, _ = HOME
    a = offset_wgs84(lat, lon, 50, 0)
    b = offset_wgs84(lat, lon, 50, 100)
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert await c.upload(1, [waypoint(0, *a, 0), waypoint(1, *b, 0)]) == 0
        await c.mission_checked(1, 2)
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        ext = await c.wait_type("EXTENDED_SYS_STATE", 2, lambda x: x.landed_state == LANDED_IN_AIR)
        assert ext.landed_state == LANDED_IN_AIR  # a rover is "in air" whenever armed
        t0 = fleet.now_s()
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == ACCEPTED
        await c.wait_text("Mission finished, loitering", 15)
        duration = fleet.now_s() - t0
        hb = await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 3)
        assert hb.base_mode & 0x80  # still armed
        cur = await c.wait_type("MISSION_CURRENT", 3)
        assert (cur.seq, cur.total, cur.mission_state) == (1, 2, 5)
        snap = v.snapshot()
        assert snap.armed
        assert haversine_m(snap.lat_deg, snap.lon_deg, *b) < 1.5
        assert 40.0 < duration < 75.0  # real PX4: 50 s at ~3 m/s
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [0])).result == ACCEPTED


async def _takeoff(c: MavClient, v, alt_m: float = 20.0) -> None:
    assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
    nan = float("nan")
    ack = await c.command_long(1, m.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, nan, nan, nan, HOME[2] + alt_m])
    assert ack.result == ACCEPTED
    await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.TAKEOFF, 3)
    await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 10)
    assert abs(v.snapshot().rel_alt_m - alt_m) < 1.0


async def _reposition(c: MavClient, north_m: float, east_m: float, alt_amsl: float) -> None:
    lat, lon = offset_wgs84(HOME[0], HOME[1], north_m, east_m)
    ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, float("nan")],
                              x=round(lat * 1e7), y=round(lon * 1e7), z=alt_amsl)
    assert ack.result == ACCEPTED


async def test_quad_takeoff_reposition_rtl(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        await _takeoff(c, v)
        t0 = fleet.now_s()
        await _reposition(c, 100, 0, HOME[2] + 20)
        target = offset_wgs84(HOME[0], HOME[1], 100, 0)
        await until(lambda: haversine_m(v.snapshot().lat_deg, v.snapshot().lon_deg, *target) <= 1.5, 5)
        assert v.mode == Mode.LOITER  # a reposition flies there in Hold
        assert 18.0 < fleet.now_s() - t0 < 32.0  # real PX4: 24.6 s
        mark = c.mark()
        assert (await c.command_long(1, m.MAV_CMD_NAV_RETURN_TO_LAUNCH)).result == ACCEPTED
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.RTL, 3)
        alts = await _record(c, "GLOBAL_POSITION_INT", lambda x: x.relative_alt / 1000, lambda: not v.armed, 10)
        assert max(alts) > 29.0  # climbed to RTL_RETURN_ALT
        # The simulator has disarmed; its STATUSTEXT is on the way to us (sent with the step's batch).
        await c.wait_text("Disarmed by landing", 3)
        texts = [t for _, t in c.status.texts]
        for expected in ("Returning to launch", "RTL: start return at 518 m (30 m above destination)",
                         "RTL: land at destination", "Landing detected", "Disarmed by landing"):
            assert any(expected in t for t in texts), expected
        landing = [x for x in c.since(mark, "STATUSTEXT") if "Landing detected" in x.text]
        disarmed = [x for x in c.since(mark, "STATUSTEXT") if "Disarmed by landing" in x.text]
        assert landing
        assert disarmed
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER and not h.base_mode & 0x80, 3)
        snap = v.snapshot()
        assert haversine_m(snap.lat_deg, snap.lon_deg, HOME[0], HOME[1]) < 1.0


async def test_rover_rtl_disarms_after_arrival(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        await _reposition(c, 40, 0, HOME[2])
        await until(lambda: v.snapshot().groundspeed_m_s >= 2.5, 5)
        await asyncio.sleep(0.5)
        assert (await c.command_long(1, m.MAV_CMD_NAV_RETURN_TO_LAUNCH)).result == ACCEPTED
        ext = await c.wait_type("EXTENDED_SYS_STATE", 2, lambda x: x.landed_state == LANDED_LANDING)
        assert ext.landed_state == LANDED_LANDING
        await c.wait_text("Landing detected", 10)
        t_land = fleet.now_s()
        await c.wait_text("Disarmed by landing", 5)
        assert 1.5 < fleet.now_s() - t_land < 3.0  # COM_DISARM_LAND 2 s
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER and not h.base_mode & 0x80, 3)
        snap = v.snapshot()
        assert haversine_m(snap.lat_deg, snap.lon_deg, HOME[0], HOME[1]) < 1.0


async def test_pause_and_resume_mission(sim_fleet_factory) -> None:
    lat, lon, _ = HOME
    far = offset_wgs84(lat, lon, 200, 0)
    items = [waypoint(0, lat, lon, 10, command=22), waypoint(1, *far, 10)]
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        assert await c.upload(1, items) == 0
        await c.mission_checked(1, len(items))
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START)).result == ACCEPTED
        await c.wait_type("MISSION_CURRENT", 15, lambda x: x.seq == 1 and x.mission_state == 3)
        await until(lambda: v.snapshot().groundspeed_m_s >= 4.0, 5)
        await c.set_mode(1, 4, 3)  # pause: Hold
        cur = await c.wait_type("MISSION_CURRENT", 3, lambda x: x.mission_state == 4)
        assert cur.seq == 1
        await asyncio.sleep(0.6)  # ~12 s sim to stop
        here = v.snapshot()
        assert here.groundspeed_m_s < 0.3
        await asyncio.sleep(0.3)
        assert haversine_m(here.lat_deg, here.lon_deg, v.snapshot().lat_deg, v.snapshot().lon_deg) < 0.5
        await c.set_mode(1, 4, 4)  # resume
        await c.wait_type("MISSION_CURRENT", 3, lambda x: x.seq == 1 and x.mission_state == 3)
        await c.wait_text("Mission finished, loitering", 10)
        snap = v.snapshot()
        assert haversine_m(snap.lat_deg, snap.lon_deg, *far) < 2.5
        assert snap.custom_mode == Mode.LOITER
        assert snap.armed  # a mission ending on a waypoint leaves the quad hovering in Hold
