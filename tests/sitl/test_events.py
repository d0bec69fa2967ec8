"""PX4's events protocol on the simulated vehicles (EVENT 410, CURRENT_EVENT_SEQUENCE 411,
REQUEST_EVENT 412, RESPONSE_EVENT_ERROR 413), checked with plain pymavlink.

pymavlink 2.4.50 has none of these messages: it hands them over as UNKNOWN_<id> with the raw frame,
decoded here from the MAVLink XML definitions, and REQUEST_EVENT is a small pymavlink message class.
Expected ids, log levels and argument bytes are the ones in the reference captures
(`shared/data/px4/{quad,rover}.tlog`).
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass
from typing import Any

from mavclient import HOME, MavClient, quad, rover, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import offset_wgs84
from sitl.events import event_id
from sitl.modes import Mode

SPEED = 10.0
ACCEPTED = 0

# Ids as PX4 sent them in the captures.
SUMMARY = 0x01A893E0
HEALTH = 0x011D3727
CHECK_MISSION = 0x0105C2D9
CHECK_OFFBOARD = 0x012F1DC7
CHECK_RC = 0x0106ED29
CHECK_CANNOT_TAKEOFF = 0x011C8F61
ARMED_BY = 0x0190CAF3
DISARMED_BY = 0x01F46777
LOGGER_FILE = 0x01125BEF
MISSION_EXECUTE = 0x01EE01B1
MISSION_CLIMB = 0x017D425C
TAKEOFF_DETECTED = 0x01414569
LANDING_DETECTED = 0x019638AC
MISSION_FINISHED = 0x01771204
COMMANDER_RTL = 0x01352CE4
RTL_RETURN_AT = 0x01522694
GF_VIOLATION = 0x01022EAB  # check_gf_violation_custom_gf (not in the captures)
FAILSAFE_GENERIC = event_id("commander_failsafe_enter_generic")
GROUP_IDS = frozenset({SUMMARY, HEALTH, CHECK_MISSION, CHECK_OFFBOARD, CHECK_RC, CHECK_CANNOT_TAKEOFF})

# The idle report of both captures (disarmed in Hold, no mission, logger running).
IDLE_SUMMARY_ARGS = bytes.fromhex("000000100080000000b03a7f80b03a7f80")
IDLE_HEALTH_ARGS = bytes.fromhex("000a1c0238")


@dataclass(frozen=True)
class Ev:
    seq: int
    id: int
    time_ms: int
    levels: int
    args: bytes  # trailing zeros trimmed, as on the wire


def _payload(msg: Any) -> bytes:
    frame = bytes(msg.data)
    return frame[10:10 + frame[1]]


def decode_event(msg: Any) -> Ev:
    pl = _payload(msg).ljust(53, b"\0")
    ident, time_ms, seq, _dst_comp, _dst_sys, lv = struct.unpack_from("<IIHBBB", pl)
    return Ev(seq, ident, time_ms, lv, pl[13:53].rstrip(b"\0"))


def decode_error(msg: Any) -> tuple[int, int, int, int, int]:
    """RESPONSE_EVENT_ERROR: (sequence, oldest available, target system, target component, reason)."""
    seq, oldest, system, component, reason = struct.unpack("<HHBBB", _payload(msg).ljust(7, b"\0"))
    return seq, oldest, system, component, reason


class RequestEvent(m.MAVLink_message):  # type: ignore[misc]
    """REQUEST_EVENT (412) as the MAVLink XML defines it; pymavlink 2.4.50's dialects lack it."""

    crc_extra = 33

    def __init__(self, target_system: int, target_component: int, first: int, last: int) -> None:
        super().__init__(412, "REQUEST_EVENT")
        self._fieldnames = ["target_system", "target_component", "first_sequence", "last_sequence"]
        self.target_system = target_system
        self.target_component = target_component
        self.first_sequence = first
        self.last_sequence = last

    def pack(self, mav: Any, force_mavlink1: bool = False) -> bytes:
        payload = struct.pack("<HHBB", self.first_sequence, self.last_sequence, self.target_system,
                              self.target_component)
        return bytes(self._pack(mav, self.crc_extra, payload, force_mavlink1=force_mavlink1))


def events(c: MavClient, mark: int = 0) -> list[Ev]:
    return [decode_event(msg) for msg in c.since(mark, "UNKNOWN_410")]


async def wait_event(c: MavClient, ident: int, timeout_s: float, mark: int = 0) -> Ev:
    msg = await c.wait_type("UNKNOWN_410", timeout_s, lambda x: decode_event(x).id == ident, since=mark)
    return decode_event(msg)


def _last_report(got: list[Ev]) -> list[Ev] | None:
    starts = [i for i, e in enumerate(got) if e.id == SUMMARY]
    if not starts:
        return None
    end = next((i for i in range(starts[-1], len(got)) if got[i].id == HEALTH), None)
    return None if end is None else got[starts[-1]:end + 1]


async def wait_report(c: MavClient, timeout_s: float, mark: int) -> list[Ev]:
    """The latest complete health and arming report (arming summary ... health summary) after `mark`."""
    async with asyncio.timeout(timeout_s):
        while (report := _last_report(events(c, mark))) is None:
            await c.wait_type("UNKNOWN_410", timeout_s, since=c.mark())
    return report


# ---------------------------------------------------------------------------------------------


def test_event_ids_are_pxs_hashes() -> None:
    """`events::ID(name)`: component 1 in the top byte, FNV-1a-32 of the name below (ids of the captures)."""
    seen = {
        "commander_arming_check_summary": SUMMARY,
        "commander_health_summary": HEALTH,
        "check_modes_mission": CHECK_MISSION,
        "check_modes_offboard_signal": CHECK_OFFBOARD,
        "check_modes_manual_control": CHECK_RC,
        "check_modes_cannot_takeoff": CHECK_CANNOT_TAKEOFF,
        "commander_armed_by": ARMED_BY,
        "commander_disarmed_by": DISARMED_BY,
        "logger_open_file_time": LOGGER_FILE,
        "mission_execute": MISSION_EXECUTE,
        "mission_climb_before_start": MISSION_CLIMB,
        "commander_takeoff_detected": TAKEOFF_DETECTED,
        "commander_landing_detected": LANDING_DETECTED,
        "mission_finished": MISSION_FINISHED,
        "commander_rtl": COMMANDER_RTL,
        "vrtl_return_at": RTL_RETURN_AT,
        "commander_mission_start_denied_no_mission": 0x016BD68A,
        "mavlink_mission_op_timeout": 0x01820270,
        "navigator_mis_geofence_violation": 0x012B352D,
        "rtl_unsupported_mav_frame": 0x018EB130,
        "rtl_land_at_destination": 0x0102D3AA,
        "commander_landing_current_pos": 0x0132B2DE,
        "mission_finished_loiter": 0x014762F6,
    }
    assert {name: event_id(name) for name in seen} == seen
    assert event_id("check_gf_violation_custom_gf") == GF_VIOLATION


async def test_reports_and_arming_events_reach_every_link(sim_fleet_factory) -> None:
    """EVENT goes to every link (STATUSTEXT only to the GCS one), one sequence shared by all."""
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base, mav_type=m.MAV_TYPE_ONBOARD_CONTROLLER) as api, \
            MavClient(ports.gcs_target_port) as gcs:
        await api.connected()
        await gcs.connected()
        # PX4 reports health and arming checks to a newly connected GCS about 1 s after its heartbeat.
        group = await wait_report(api, 3.0, mark=0)
        assert [e.id for e in group] == [SUMMARY, CHECK_MISSION, CHECK_OFFBOARD, CHECK_RC, HEALTH]
        assert [e.levels for e in group] == [0x88, 0x66, 0x33, 0x44, 0x88]
        assert [e.args for e in group] == [IDLE_SUMMARY_ARGS, bytes.fromhex("0800000014"),
                                           bytes.fromhex("0040000014"), bytes.fromhex("ffffffff07"), IDLE_HEALTH_ARGS]

        mark = api.mark()
        assert (await api.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        armed = await wait_event(api, ARMED_BY, 2.0, mark)
        assert (armed.levels, armed.args) == (0x66, b"\x04")  # arm_disarm_reason_t COMMAND_EXTERNAL
        logger = await wait_event(api, LOGGER_FILE, 2.0, mark)
        assert logger.seq == armed.seq + 1
        assert struct.unpack("<H", logger.args[:2])[0] >= 2020
        assert (await api.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [0])).result == ACCEPTED
        disarmed = await wait_event(api, DISARMED_BY, 2.0, mark)
        assert (disarmed.levels, disarmed.args) == (0x66, b"\x04")
        await wait_event(gcs, DISARMED_BY, 2.0)

        on_api = {e.seq: e for e in events(api)}
        on_gcs = {e.seq: e for e in events(gcs)}
        common = sorted(set(on_api) & set(on_gcs))
        assert common
        assert common[-1] == disarmed.seq
        assert all(on_api[s] == on_gcs[s] for s in common)
        assert common == list(range(common[0], common[-1] + 1))  # consecutive, nothing lost on either link
        assert "UNKNOWN_410" in api.counts
        assert "STATUSTEXT" not in api.counts
        await gcs.wait_text("Disarmed by external command", 1.0)


async def test_current_event_sequence_follows_the_events(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED) as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        mark = c.mark()
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        logger = await wait_event(c, LOGGER_FILE, 2.0, mark)
        # Streamed every 3 s (0.33 Hz): sequence = the latest event, flags 0 once events exist.
        msg = await c.wait_type("UNKNOWN_411", 5.0, since=c.mark())
        seq, flags = struct.unpack("<HB", _payload(msg).ljust(3, b"\0"))
        latest = max(e.seq for e in events(c))
        assert seq == latest >= logger.seq
        assert flags == 0


async def test_request_event_resends_or_reports_unavailable(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        for _ in range(5):  # 3 events per arm/disarm cycle: more than the 20 PX4 keeps
            mark = c.mark()
            assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
            assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [0])).result == ACCEPTED
            await wait_event(c, DISARMED_BY, 2.0, mark)
        await asyncio.sleep(0.6)  # the logger's report 3.2 s (sim) after the disarm, so nothing more comes
        received = {e.seq: e for e in events(c)}
        latest = max(received)
        assert latest >= 24

        mark = c.mark()
        c.send(RequestEvent(1, 1, latest, latest))
        again = await wait_event(c, received[latest].id, 2.0, mark)
        assert again == received[latest]

        mark = c.mark()
        c.send(RequestEvent(1, 1, 0, 0))
        err = decode_error(await c.wait_type("UNKNOWN_413", 2.0, since=mark))
        assert err == (0, latest - 19, 255, 190, 0)  # MAV_EVENT_ERROR_REASON_UNAVAILABLE

        # A range longer than the buffer: one error for its old part, then the 20 newest events.
        mark = c.mark()
        c.send(RequestEvent(1, 1, latest - 24, latest))
        await wait_event(c, received[latest].id, 2.0, mark)
        await asyncio.sleep(0.1)
        resent = [e.seq for e in events(c, mark)]
        errors = [decode_error(x) for x in c.since(mark, "UNKNOWN_413")]
        assert errors == [(latest - 24, latest - 19, 255, 190, 0)]
        assert resent == list(range(latest - 19, latest + 1))
        assert all(e == received[e.seq] for e in events(c, mark) if e.seq in received)


async def test_mode_and_mission_changes_are_reported(sim_fleet_factory) -> None:
    """Reports follow the check results, at most one per 2 s (the captures' RTL and mission probes)."""
    async with sim_fleet_factory([quad()], speed_factor=SPEED, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        await wait_report(c, 3.0, mark=0)
        mark = c.mark()
        await c.set_mode(1, 4, 5)  # RTL while disarmed: "Mode not suitable for arming"
        group = await wait_report(c, 4.0, mark)
        assert [e.id for e in group] == [SUMMARY, CHECK_CANNOT_TAKEOFF, CHECK_MISSION, CHECK_OFFBOARD, CHECK_RC,
                                         HEALTH]
        assert group[0].args == bytes.fromhex("000000100080000000900a4380b03a7f80")
        assert group[1].args == bytes.fromhex("20303c0014")
        mark = c.mark()
        await c.set_mode(1, 4, 3)
        back = await wait_report(c, 4.0, mark)
        assert back[0].args == IDLE_SUMMARY_ARGS
        assert CHECK_CANNOT_TAKEOFF not in [e.id for e in back]
        assert back[0].time_ms - group[0].time_ms >= 2000

        mark = c.mark()
        lat, lon = offset_wgs84(HOME[0], HOME[1], 30, 0)
        assert await c.upload(1, [waypoint(0, lat, lon, 10)]) == 0
        loaded = await wait_report(c, 4.0, mark)
        assert [e.id for e in loaded] == [SUMMARY, CHECK_OFFBOARD, CHECK_RC, HEALTH]
        assert loaded[0].args == bytes.fromhex("000000100080000000b83a7f80b83a7f80")  # Mission armable


async def test_mission_flight_events(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=20.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        lat, lon = offset_wgs84(HOME[0], HOME[1], 20, 0)
        items = [waypoint(0, 0, 0, 10, command=22), waypoint(1, lat, lon, 10), waypoint(2, lat, lon, 0, command=21)]
        assert await c.upload(1, items) == 0
        await c.mission_checked(1, len(items))
        mark = c.mark()
        assert (await c.command_long(1, m.MAV_CMD_MISSION_START, [0, 2])).result == ACCEPTED
        await wait_event(c, DISARMED_BY, 60.0, mark)
        flow = [e for e in events(c, mark) if e.id not in GROUP_IDS]
        assert [e.id for e in flow] == [ARMED_BY, LOGGER_FILE, MISSION_EXECUTE, MISSION_CLIMB, TAKEOFF_DETECTED,
                                        LANDING_DETECTED, MISSION_FINISHED, DISARMED_BY]
        assert flow[0].args == b"\x05"  # MISSION_START
        assert flow[-1].args == b"\x06"  # AUTO_DISARM_LAND
        assert math.isclose(struct.unpack("<f", flow[3].args.ljust(4, b"\0"))[0], 10.0, abs_tol=0.05)
        assert fleet.vehicles[0].snapshot().custom_mode == Mode.MISSION


async def test_geofence_breach_and_rtl_events(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=20.0, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        fence = [waypoint(i, *offset_wgs84(HOME[0], HOME[1], dn, de), 0, command=5001, params=(4,), frame=5,
                          mission_type=1) for i, (dn, de) in enumerate([(30, -30), (30, 30), (-30, 30), (-30, -30)])]
        assert (await c.command_long(1, m.MAV_CMD_COMPONENT_ARM_DISARM, [1])).result == ACCEPTED
        nan = float("nan")
        assert (await c.command_long(1, m.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, nan, nan, nan, HOME[2] + 10])).result == 0
        await c.heartbeat_of(1, lambda h: h.custom_mode == Mode.LOITER, 15)
        lat, lon = offset_wgs84(HOME[0], HOME[1], 60, 0)
        mark = c.mark()
        await c.command_int(1, m.MAV_CMD_DO_REPOSITION, 5, [-1, 1, 0, nan], x=round(lat * 1e7),
                            y=round(lon * 1e7), z=HOME[2] + 10)
        assert await c.upload(1, fence, mission_type=1) == 0  # the fence comes while flying out of it
        failsafe = await wait_event(c, FAILSAFE_GENERIC, 20.0, mark)
        assert failsafe.levels == 0x42  # critical, internally a warning
        assert failsafe.args == struct.pack("<IB", Mode.LOITER, 5)  # user's mode Hold, action Hold
        await wait_event(c, GF_VIOLATION, 3.0, mark)
        group = await wait_report(c, 2.0, mark)
        violation = next(e for e in group if e.id == GF_VIOLATION)
        assert (violation.levels, violation.args) == (0x33, bytes.fromhex("ffffffff14"))
        summary_error, _warning, can_arm = struct.unpack_from("<III", group[0].args.ljust(17, b"\0"), 1)
        assert summary_error & (1 << 20)
        assert can_arm == 0

        mark = c.mark()
        assert (await c.command_long(1, m.MAV_CMD_NAV_RETURN_TO_LAUNCH)).result == ACCEPTED
        rtl = await wait_event(c, COMMANDER_RTL, 2.0, mark)
        ret = await wait_event(c, RTL_RETURN_AT, 2.0, mark)
        assert ret.seq == rtl.seq + 1
        assert struct.unpack("<ii", ret.args.ljust(8, b"\0")) == (round(HOME[2] + 30), 30)


async def test_rover_reports_twice_on_connect(sim_fleet_factory) -> None:
    """The rover capture has a second, identical report 2 s after the connect report (the idle 0.33/s)."""
    async with sim_fleet_factory([rover()], speed_factor=SPEED, stream_profile="gcs") as (_fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        first = await wait_report(c, 3.0, mark=c.mark())
        second = await wait_report(c, 4.0, mark=c.mark())
        assert [e.args for e in second] == [e.args for e in first]
        assert 1900 <= second[0].time_ms - first[0].time_ms <= 2300
        assert second[0].seq == first[-1].seq + 1
