"""Offboard control as real PX4 does it (px4-notes "Offboard"), with plain pymavlink setpoints."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import AsyncIterator

from mavclient import HOME, MavClient, quad, rover
from pymavlink.dialects.v20 import development as m
from test_events import decode_event

from planner.geo import haversine_m
from sitl.events import event_id
from sitl.modes import Mode

SPEED = 10.0
ACCEPTED, TEMPORARILY_REJECTED = 0, 1
VELOCITY_MASK = 0x0DC7  # position, acceleration, yaw and yaw rate ignored
POSITION_MASK = 0x0DF8  # velocity, acceleration, yaw and yaw rate ignored
FRAME_LOCAL_NED = 1


class Setpoints:
    """Streams SET_POSITION_TARGET_LOCAL_NED at `rate_hz` of simulated time while running."""

    def __init__(self, c: MavClient, speed: float, rate_hz: float = 5.0) -> None:
        self.c = c
        self.period_wall_s = 1.0 / rate_hz / speed
        self.mask = VELOCITY_MASK
        self.ned = (0.0, 0.0, 0.0)  # velocity m/s or position m, north-east-down

    def velocity(self, vn: float, ve: float, vd: float) -> None:
        self.mask, self.ned = VELOCITY_MASK, (vn, ve, vd)

    def position(self, n: float, e: float, d: float) -> None:
        self.mask, self.ned = POSITION_MASK, (n, e, d)

    def send_one(self) -> None:
        a, b, c = self.ned
        pos = (a, b, c) if self.mask == POSITION_MASK else (0.0, 0.0, 0.0)
        vel = (a, b, c) if self.mask == VELOCITY_MASK else (0.0, 0.0, 0.0)
        self.c.send(m.MAVLink_set_position_target_local_ned_message(
            0, 1, 1, FRAME_LOCAL_NED, self.mask, *pos, *vel, 0.0, 0.0, 0.0, 0.0, 0.0))

    async def run(self) -> None:
        while True:
            self.send_one()
            await asyncio.sleep(self.period_wall_s)


@contextlib.asynccontextmanager
async def streaming(sp: Setpoints) -> AsyncIterator[Setpoints]:
    task = asyncio.create_task(sp.run(), name="offboard-setpoints")
    try:
        yield sp
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _mode_after_set(c: MavClient, main: int, sub: int = 0) -> int:
    mark = c.mark()
    ack = await c.set_mode(1, main, sub)
    assert ack.result == ACCEPTED  # PX4 ACKs every known main mode, taken or not
    # The next two HEARTBEATs: the mode shows within one 1 Hz period.
    await c.wait_type("HEARTBEAT", 2.0, since=mark)
    hb = await c.wait_type("HEARTBEAT", 2.0, since=c.mark())
    return int(hb.custom_mode)


async def test_offboard_is_taken_only_after_a_second_of_setpoints(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        assert await _mode_after_set(c, 6) == Mode.LOITER  # no setpoints at all
        sp = Setpoints(c, SPEED)
        async with streaming(sp):
            await asyncio.sleep(0.4 / SPEED)  # 0.4 s of stream: not yet
            assert not fleet.vehicles[0].offboard_signal_ok()
            mark = c.mark()
            assert (await c.set_mode(1, 6)).result == ACCEPTED
            await asyncio.sleep(0.05)
            assert len([a for a in c.since(mark, "COMMAND_ACK") if a.command == m.MAV_CMD_DO_SET_MODE]) == 2
            assert fleet.vehicles[0].snapshot().custom_mode == Mode.LOITER
            await asyncio.sleep(1.2 / SPEED)
            assert await _mode_after_set(c, 6) == Mode.OFFBOARD
        await asyncio.sleep(2.0 / SPEED)
        # Disarmed, a lost stream triggers no failsafe: the mode stays, arming is refused.
        assert fleet.vehicles[0].snapshot().custom_mode == Mode.OFFBOARD
        ack = await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])
        assert ack.result == TEMPORARILY_REJECTED


async def test_offboard_follows_velocity_and_position_setpoints(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        sp = Setpoints(c, SPEED)
        async with streaming(sp):
            await asyncio.sleep(1.3 / SPEED)
            assert await _mode_after_set(c, 6) == Mode.OFFBOARD
            assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
            sp.velocity(0.0, 0.0, -1.5)  # climb
            await asyncio.sleep(9.0 / SPEED)
            up = v.snapshot().rel_alt_m
            assert 8.0 < up < 14.0
            sp.velocity(5.0, 0.0, 0.0)
            start = v.snapshot()
            await asyncio.sleep(8.0 / SPEED)
            level = v.snapshot()
            await asyncio.sleep(2.0 / SPEED)
            end = v.snapshot()
            north_m = haversine_m(start.lat_deg, HOME[1], end.lat_deg, HOME[1])
            assert 28.0 < north_m < 45.0  # real PX4: 36 m in 10 s at vn = 5 m/s
            assert abs(end.rel_alt_m - level.rel_alt_m) < 0.3  # vd = 0: no more climbing
            assert end.rel_alt_m > up
            sp.position(0.0, 0.0, -5.0)  # back over the origin, 5 m up
            await asyncio.sleep(25.0 / SPEED)
            snap = v.snapshot()
            assert haversine_m(HOME[0], HOME[1], snap.lat_deg, snap.lon_deg) < 2.0
            assert abs(snap.rel_alt_m - 5.0) < 1.0
            assert snap.custom_mode == Mode.OFFBOARD


async def test_setpoint_loss_fails_safe_to_rtl_and_offboard_stays_selected(sim_fleet_factory) -> None:
    speed = 20.0
    async with sim_fleet_factory([quad()], speed_factor=speed, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.gcs_target_port) as c:
        await c.connected()
        v = fleet.vehicles[0]
        sp = Setpoints(c, speed)
        async with streaming(sp):
            await asyncio.sleep(1.3 / speed)
            assert await _mode_after_set(c, 6) == Mode.OFFBOARD
            assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
            sp.velocity(0.0, 0.0, -2.0)
            await asyncio.sleep(6.0 / speed)
            assert v.snapshot().rel_alt_m > 2.0
            mark = c.mark()
        # COM_OF_LOSS_T counts from the last setpoint received, up to one 5 Hz period before the stop.
        stopped_s = v.offboard.setpoint.received_s
        hb = await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.RTL, 5.0)
        assert hb is not None
        assert 1.0 <= v.now_s() - stopped_s < 3.5  # COM_OF_LOSS_T 1 s, then the next 1 Hz HEARTBEAT
        await c.wait_text("Failsafe activated", 1.0)
        failsafe = next(e for e in map(decode_event, c.since(mark, "UNKNOWN_410"))
                        if e.id == event_id("commander_failsafe_enter_generic"))
        assert failsafe.args == struct.pack("<IB", Mode.OFFBOARD, 6)  # from Offboard, action RTL
        # RTL lands and disarms; the selected mode is still Offboard, now without a signal.
        await c.heartbeat_of(1, lambda h: not h.base_mode & 0x80, 120.0 / speed * 3)
        hb = await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.OFFBOARD, 3.0)
        assert hb.system_status == 0  # UNINIT: cannot arm in this mode
        ack = await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])
        assert ack.result == TEMPORARILY_REJECTED
        await c.wait_text("Resolve system health failures first", 1.0)
        assert await _mode_after_set(c, 4, 3) == Mode.LOITER
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED


async def test_rover_drives_on_velocity_setpoints(sim_fleet_factory) -> None:
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        v = fleet.vehicles[0]
        sp = Setpoints(c, SPEED)
        sp.velocity(0.0, 2.0, -3.0)  # east at 2 m/s; a rover ignores the climb
        async with streaming(sp):
            await asyncio.sleep(1.3 / SPEED)
            assert await _mode_after_set(c, 6) == Mode.OFFBOARD
            assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
            await asyncio.sleep(8.0 / SPEED)
            snap = v.snapshot()
        east_m = haversine_m(HOME[0], HOME[1], HOME[0], snap.lon_deg)
        assert 8.0 < east_m < 17.0
        assert math.isclose(snap.rel_alt_m, 0.0, abs_tol=0.01)
