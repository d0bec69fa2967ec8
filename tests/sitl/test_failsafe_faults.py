"""Failsafes (geofence, battery, data link) and injected faults of the simulated vehicles."""

from __future__ import annotations

import asyncio
import socket

import pytest
from mavclient import HOME, MavClient, quad, rover, until, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import haversine_m, offset_wgs84
from sitl.modes import Mode

SPEED = 20.0
ACCEPTED, FAILED, IN_PROGRESS = 0, 4, 5


async def _fly_north(c: MavClient, north_m: float, alt_m: float = 20.0) -> None:
    """Arm, take off to alt_m and reposition north_m north (all in Hold)."""
    assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
    nan = float("nan")
    assert (await c.command_long(1, m.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, nan, nan, nan, HOME[2] + alt_m])).result == 0
    await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.TAKEOFF, 3)
    await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 10)
    lat, lon = offset_wgs84(HOME[0], HOME[1], north_m, 0)
    ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, nan], x=round(lat * 1e7),
                              y=round(lon * 1e7), z=HOME[2] + alt_m)
    assert ack.result == ACCEPTED


def _fence_square(half_m: float) -> list:
    corners = [(half_m, -half_m), (half_m, half_m), (-half_m, half_m), (-half_m, -half_m)]
    return [waypoint(i, *offset_wgs84(HOME[0], HOME[1], dn, de), 0, command=5001, params=(4,), frame=5,
                     mission_type=1) for i, (dn, de) in enumerate(corners)]


async def test_geofence_breach_holds(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        await _fly_north(c, 150)
        assert await c.upload(1, _fence_square(60), mission_type=1) == 0
        await c.wait_text("Geofence: approaching or outside geofence", 10)
        await c.wait_text("Failsafe activated", 2)
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 3)
        await asyncio.sleep(1.0)
        snap = v.snapshot()
        north = haversine_m(HOME[0], HOME[1], snap.lat_deg, HOME[1])
        assert 60.0 < north < 75.0  # real PX4: breach reported at 61.5 m, max excursion 67 m
        assert snap.groundspeed_m_s < 0.5
        # a reposition outside the fence is ACKed but ignored
        lat, lon = offset_wgs84(HOME[0], HOME[1], 300, 0)
        ack = await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, float("nan")],
                                  x=round(lat * 1e7), y=round(lon * 1e7), z=HOME[2] + 20)
        assert ack.result == ACCEPTED
        await asyncio.sleep(0.5)
        assert v.snapshot().groundspeed_m_s < 0.5


async def test_low_battery_returns_home(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        await _fly_north(c, 60)
        await asyncio.sleep(0.5)
        v.faults.battery_drop(88.0)
        bat = await c.wait_type("BATTERY_STATUS", 3, lambda b: b.battery_remaining < 15)
        assert bat.battery_remaining < 15
        await c.wait_text("Low battery", 3)
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.RTL, 3)
        await c.wait_text("Disarmed by landing", 15)
        snap = v.snapshot()
        assert haversine_m(snap.lat_deg, snap.lon_deg, HOME[0], HOME[1]) < 1.0


async def test_battery_recharges_on_the_pad(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports):
        v = fleet.vehicles[0]
        v.faults.battery_drop(50.0)
        low = v.snapshot().battery_percent
        await asyncio.sleep(1.0)
        assert v.snapshot().battery_percent > low + 0.1  # 200 W into 400 Wh for ~20 s
        assert ports.gcs_target_port > 0


async def test_link_loss_fault_triggers_rtl(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        await _fly_north(c, 60)
        await asyncio.sleep(0.3)
        t0 = fleet.now_s()
        v.faults.link_loss(20.0)
        await asyncio.sleep(0.1)  # datagrams already in flight still arrive
        mark = c.mark()
        await asyncio.sleep(0.3)
        assert c.since(mark) == []  # nothing arrives during the outage
        await until(lambda: v.mode == Mode.RTL, 5)
        assert 8.5 <= fleet.now_s() - t0 <= 12.0  # COM_DL_LOSS_T 10 s after the last heartbeat
        await c.wait_text("Data link regained", 5)  # texts sent during the outage are lost


async def test_stopping_gcs_heartbeats_triggers_rtl(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        c.heartbeat_enabled = False
        t0 = fleet.now_s()
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.RTL, 5)
        assert 8.5 <= fleet.now_s() - t0 <= 12.0
        assert any("Data link lost" in t for _, t in c.status.texts)


async def test_packet_loss_drops_a_share(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]

        async def rate() -> float:
            mark = c.mark()
            t0 = fleet.now_s()
            await asyncio.sleep(1.0)
            return len(c.since(mark, "GLOBAL_POSITION_INT")) / (fleet.now_s() - t0)

        full = await rate()
        v.faults.packet_loss(0.5)
        half = await rate()
        v.faults.packet_loss(0.0)
        assert 40 < full < 60
        assert 0.3 * full < half < 0.7 * full


async def test_gripper_jam_fails_the_release(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        v.faults.gripper_jam(True)
        mark = c.mark()
        first = await c.command_long(1, m.MAV_CMD_DO_GRIPPER, [1, 0], final=False)
        assert first.result == IN_PROGRESS
        final = await c.wait_type("COMMAND_ACK", 3, lambda a: a.command == 211 and a.result != 5, since=mark)
        assert final.result == FAILED
        assert not v.snapshot().payload_released
        v.faults.gripper_jam(False)
        mark = c.mark()
        await c.command_long(1, m.MAV_CMD_DO_GRIPPER, [1, 0], final=False)
        final = await c.wait_type("COMMAND_ACK", 3, lambda a: a.command == 211 and a.result != 5, since=mark)
        assert final.result == ACCEPTED
        assert v.snapshot().payload_released


async def test_wind_gust_pushes_a_hovering_quad(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        await _fly_north(c, 0)
        before = v.snapshot()
        v.faults.wind_gust(12.0, 270.0, 20.0)  # from the west: pushes east
        await asyncio.sleep(0.5)
        after = v.snapshot()
        assert after.lon_deg > before.lon_deg
        # the position controller rejects most of it: ~1 m off station at 12 m/s
        assert haversine_m(before.lat_deg, before.lon_deg, after.lat_deg, after.lon_deg) > 0.7


async def test_fleet_of_three_and_clean_shutdown(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad(), quad(), rover()], speed_factor=10.0, stream_profile="gcs") as (
            _fleet, ports):
        async with MavClient(ports.gcs_target_port) as gcs, MavClient(ports.api_target_base + 2) as api2:
            await gcs.wait_for(lambda x: x.get_type() == "HEARTBEAT" and x.get_srcSystem() == 3, 5)
            seen = {r.msg.get_srcSystem() for r in gcs.history if r.msg.get_type() == "HEARTBEAT"}
            assert seen == {1, 2, 3}  # every vehicle's GCS link reaches the one GCS port
            hb = await api2.connected()
            assert (hb.get_srcSystem(), hb.type) == (3, 10)
            # From the frame header: pymavlink leaves srcSystem 0 on the EVENT (410) it cannot decode.
            assert {r.msg.get_msgbuf()[5] for r in api2.history} == {3}
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert "sitl-fleet-steps" in names
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(n.startswith("sitl-") for n in names)
    # every socket is closed: all listen ports can be bound again
    for base in (ports.gcs_listen_base, ports.api_listen_base):
        for i in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", base + i))
            s.close()


async def test_scheduler_crash_surfaces_at_exit(sim_fleet_factory) -> None:
    class Boom(RuntimeError):
        pass

    def explode(now_s: float) -> None:
        raise Boom("tick failed")

    seen: list = []

    async def run() -> None:
        async with sim_fleet_factory([quad()], speed_factor=10.0, stream_profile="gcs") as (fleet, ports):
            seen.append(ports)
            fleet.vehicles[0].tick = explode  # type: ignore[method-assign]
            await asyncio.sleep(0.2)

    with pytest.raises(Boom):
        await run()
    ports = seen[0]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", ports.api_listen_base))  # closed despite the crash
    s.close()
