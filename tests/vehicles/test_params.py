"""Parameters over our own frames (vehicles.mavsdk_backend._params): the wire encoding, and set/get
against the built-in simulator's PX4 parameter protocol, with its faults."""

from __future__ import annotations

import asyncio
import math
import struct
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymavlink.dialects.v20 import development as mavlink2
from vehicles_harness import SitlChoice, fleet_under_test, require_builtin

from vehicles.errors import CommandRejected, CommandTimeout, LinkLost
from vehicles.mavsdk_backend._params import (
    TYPE_INT32,
    TYPE_REAL32,
    ParamValue,
    encode_value,
    param_request_read_frame,
    param_set_frame,
    parse_param_value,
)
from vehicles.mavsdk_backend._transport import iter_frames

INT32 = st.integers(-(2**31), 2**31 - 1)


def _pymavlink_parse(data: bytes) -> list[mavlink2.MAVLink_message]:
    parser = mavlink2.MAVLink(None)
    messages = parser.parse_buffer(data) or []
    assert all(m.get_type() != "BAD_DATA" for m in messages)
    return messages


# ---- the wire ----

@given(INT32)
def test_int32_travels_bytewise_in_the_float_field(value: int) -> None:
    raw = encode_value("set_param X", "COM_LOW_BAT_ACT", value, TYPE_INT32)
    assert raw == struct.pack("<i", value)
    frame = param_set_frame(7, 3, "COM_LOW_BAT_ACT", raw, TYPE_INT32)
    (msg,) = _pymavlink_parse(frame)  # pymavlink checks the CRC
    assert msg.get_type() == "PARAM_SET"
    assert (msg.target_system, msg.target_component, msg.param_type) == (3, 1, TYPE_INT32)
    assert msg.param_id == "COM_LOW_BAT_ACT"
    ((sysid, msgid, payload),) = list(iter_frames(frame))
    assert (sysid, msgid) == (245, mavlink2.MAVLINK_MSG_ID_PARAM_SET)
    assert payload.ljust(23, b"\x00")[:4] == raw  # byte exact, NaN patterns (-1) included


@given(st.floats(width=32, allow_nan=False))
def test_real32_is_a_plain_float(value: float) -> None:
    raw = encode_value("set_param X", "MPC_XY_CRUISE", value, TYPE_REAL32)
    (msg,) = _pymavlink_parse(param_set_frame(0, 1, "MPC_XY_CRUISE", raw, TYPE_REAL32))
    assert msg.param_value == value
    assert msg.param_type == TYPE_REAL32
    assert ParamValue("MPC_XY_CRUISE", raw, TYPE_REAL32).value == value


def test_values_that_do_not_fit_the_type_are_refused_before_sending() -> None:
    with pytest.raises(CommandRejected) as fraction:
        encode_value("set_param GF_ACTION", "GF_ACTION", 1.5, TYPE_INT32)
    assert fraction.value.result == "WRONG_TYPE"
    with pytest.raises(CommandRejected):
        encode_value("set_param GF_ACTION", "GF_ACTION", 2**31, TYPE_INT32)
    assert encode_value("set_param GF_ACTION", "GF_ACTION", 2.0, TYPE_INT32) == struct.pack("<i", 2)
    assert encode_value("set_param X", "X", 3, TYPE_REAL32) == struct.pack("<f", 3.0)


def test_frames_split_out_of_one_datagram_and_param_value_parses() -> None:
    value = mavlink2.MAVLink_param_value_message(b"NAV_DLL_ACT", struct.unpack("<f", struct.pack("<i", 2))[0],
                                                 TYPE_INT32, 21, 16)
    sender = mavlink2.MAVLink(None, srcSystem=4, srcComponent=1)
    heartbeat = mavlink2.MAVLink_heartbeat_message(2, 12, 0, 0, 4, 3)
    read_frame = param_request_read_frame(1, 4, "NAV_DLL_ACT")
    datagram = heartbeat.pack(sender) + value.pack(sender) + read_frame
    frames = list(iter_frames(datagram))
    assert [(s, m) for s, m, _ in frames] == [(4, 0), (4, 22), (245, 20)]
    parsed = parse_param_value(frames[1][2])
    assert (parsed.name, parsed.ptype, parsed.value) == ("NAV_DLL_ACT", TYPE_INT32, 2)
    (read,) = _pymavlink_parse(read_frame)
    assert (read.param_id, read.param_index, read.target_system) == ("NAV_DLL_ACT", -1, 4)


# ---- against the built-in simulator ----

async def test_int_and_float_parameters_keep_their_types(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "reading the simulator's parameter table")
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone, params = env.vehicles[0], env.sim_vehicle(0).params
        threads_before = {t.ident for t in threading.enumerate()}
        await drone.set_param("COM_LOW_BAT_ACT", 2)  # INT32
        await drone.set_param("COM_OBL_RC_ACT", -1)  # INT32 whose bytes are a NaN float
        await drone.set_param("COM_DISARM_LAND", 4)  # REAL32 given an int: sent as 4.0
        await drone.set_param("GF_ACTION", 1.0)  # INT32 given a whole float: sent as 1
        assert [params.get(n) for n in ("COM_LOW_BAT_ACT", "COM_OBL_RC_ACT", "COM_DISARM_LAND", "GF_ACTION")] \
            == [2, -1, 4.0, 1]
        assert await drone.get_param("COM_OBL_RC_ACT") == -1.0
        assert await drone.get_param("MAV_SYS_ID") == float(env.sim_vehicle(0).sysid)
        with pytest.raises(CommandRejected) as fraction:
            await drone.set_param("GF_ACTION", 2.5)
        assert fraction.value.result == "WRONG_TYPE"
        assert params.get("GF_ACTION") == 1
        with pytest.raises(CommandRejected) as not_taken:
            await drone.set_param("MPC_XY_CRUISE", math.inf)  # the simulator keeps non-finite values out
        assert not_taken.value.result == "VALUE_NOT_TAKEN"
        assert params.get("MPC_XY_CRUISE") == 5.0
        with pytest.raises(CommandRejected) as unknown:
            await drone.get_param("NO_SUCH_PARAM", timeout_s=3.0)  # PX4 answers PARAM_ERROR at once
        assert unknown.value.result == "UNKNOWN_PARAM"
        # no worker thread behind parameters (MAVSDK's own threads are native, not in this list)
        assert {t.ident for t in threading.enumerate()} <= threads_before


async def test_a_silent_vehicle_times_out_and_parameters_work_after_the_link_returns(
        sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "link loss injection")
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone, sim = env.vehicles[0], env.sim_vehicle(0)
        link = env.fleet._link
        assert link is not None
        sim.faults.link_loss(40.0)  # longer than the call waits
        with pytest.raises((CommandTimeout, LinkLost)):
            await drone.set_param("MPC_XY_CRUISE", 6.0, timeout_s=1.0)
        assert sim.params.get("MPC_XY_CRUISE") == 5.0
        assert not link._taps  # nothing keeps listening after the call gave up
        await drone.wait_for(lambda s: not s.link_alive, 60, "link lost", fail_on_link_loss=False)
        with pytest.raises(LinkLost):  # known lost: said at once
            await drone.set_param("MPC_XY_CRUISE", 6.0)
        await drone.wait_for(lambda s: s.link_alive, 60, "link back", fail_on_link_loss=False)
        await drone.set_param("MPC_XY_CRUISE", 6.0)
        assert sim.params.get("MPC_XY_CRUISE") == 6.0


async def test_set_param_retries_through_packet_loss(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "packet loss injection")
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone, sim = env.vehicles[0], env.sim_vehicle(0)
        sim.faults.packet_loss(0.4)  # both ways: an exchange gets through about a third of the time
        for speed in (6.0, 6.5, 7.0, 7.5):
            await drone.set_param("MPC_XY_CRUISE", speed, timeout_s=60.0)
            assert sim.params.get("MPC_XY_CRUISE") == speed
        sim.faults.packet_loss(0.0)


async def test_concurrent_sets_on_one_vehicle(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "reading the simulator's parameter table")
    async with fleet_under_test(sitl_options, ["quad", "rover"]) as env:
        async with asyncio.TaskGroup() as tg:
            for i, vehicle in enumerate(env.vehicles):
                tg.create_task(vehicle.set_param("NAV_ACC_RAD", 3.0 + i))
                tg.create_task(vehicle.set_param("RTL_RETURN_ALT", 40.0 + i))
        for i in range(2):
            params = env.sim_vehicle(i).params
            assert (params.get("NAV_ACC_RAD"), params.get("RTL_RETURN_ALT")) == (3.0 + i, 40.0 + i)


async def test_a_wrong_type_guess_is_corrected_from_the_echo(sitl_options: SitlChoice) -> None:
    require_builtin(sitl_options, "reading the simulator's parameter table")
    async with fleet_under_test(sitl_options, ["quad"]) as env:
        drone, params = env.vehicles[0], env.sim_vehicle(0).params
        client = drone._param_client()
        client._types["COM_DISARM_LAND"] = TYPE_INT32  # as if PX4 had said INT32: it is REAL32
        answer = await asyncio.wait_for(client.write("COM_DISARM_LAND", 3, retry_s=0.1), 5.0)
        assert (answer.ptype, answer.value) == (TYPE_REAL32, 3.0)
        assert params.get("COM_DISARM_LAND") == 3.0
