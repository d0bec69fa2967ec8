"""PX4 mode numbers and the mission/fence items PX4 gets, per vehicle kind."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vehicles import px4
from vehicles.base import (
    Delay,
    ExclusionCircle,
    ExclusionPolygon,
    InclusionPolygon,
    Land,
    MissionState,
    PayloadRelease,
    TakeOff,
    Waypoint,
)
from vehicles.errors import GeofenceUploadFailed, MissionInvalid

HOME = (60.1699, 24.9384)


def test_observed_custom_modes_decode_to_names() -> None:
    # Values as seen in PX4's HEARTBEAT (px4-notes table).
    assert px4.mode_name(0x03040000) == "HOLD"
    assert px4.mode_name(0x04040000) == "MISSION"
    assert px4.mode_name(0x05040000) == "RTL"
    assert px4.mode_name(0x06040000) == "LAND"
    assert px4.mode_name(0x00030000) == "POSCTL"
    assert px4.mode_name(0x000B0000) == "ALTITUDE_CRUISE"
    assert px4.mode_name(0x0B040000).startswith("UNKNOWN_0x0b040000")
    assert px4.mode_number("hold") == 0x03040000
    assert px4.decode_mode(0x05040000) == (4, 5)
    with pytest.raises(KeyError):
        px4.mode_number("RATTITUDE")


@given(st.sampled_from(sorted(px4.PX4_MODES)))
def test_mode_names_round_trip(name: str) -> None:
    number = px4.mode_number(name)
    assert px4.mode_name(number) == name
    assert px4.encode_mode(*px4.decode_mode(number)) == number


def test_mav_type_and_mission_state() -> None:
    assert px4.kind_of_mav_type(2) == "drone"
    assert px4.kind_of_mav_type(10) == "rover"
    assert px4.kind_of_mav_type(6) is None  # a GCS is no vehicle
    assert px4.mission_state(4) == MissionState.PAUSED
    assert px4.mission_state(5) == MissionState.COMPLETE
    assert px4.mission_state(99) == MissionState.UNKNOWN
    assert px4.result_name(1) == "TEMPORARILY_REJECTED"
    assert px4.result_name(42) == "RESULT_42"


def test_drone_mission_is_takeoff_to_land_in_relative_frame() -> None:
    items = [TakeOff(20), Waypoint(60.17, 24.94, 25, speed_m_s=8, acceptance_m=3), Delay(5),
             PayloadRelease(), Land(60.171, 24.941)]
    raw = px4.mission_items(items, "drone", takeoff_at=HOME)
    assert [r.command for r in raw] == [22, 178, 16, 16, 211, 21]
    assert [r.seq for r in raw] == list(range(6))
    takeoff, speed, wp, delay, grip, land = raw
    assert (takeoff.x, takeoff.y, takeoff.z) == (601699000, 249384000, 20)
    assert takeoff.frame == wp.frame == land.frame == px4.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    assert speed.param2 == 8
    assert (wp.x, wp.y, wp.z, wp.param2) == (601700000, 249400000, 25, 3)
    assert math.isnan(wp.param4)  # keep yaw
    # a drone's Delay holds where the waypoint before it was (a NAV_DELAY lost its altitude on PX4)
    assert (delay.frame, delay.param1, delay.x, delay.y, delay.z) == (wp.frame, 5, wp.x, wp.y, wp.z)
    assert math.isnan(delay.param4)
    assert (grip.param1, grip.param2) == (1, px4.GRIPPER_ACTION_RELEASE)
    assert (land.x, land.y, land.z) == (601710000, 249410000, 0)
    assert px4.mission_seq_of_item(items, raw) == [0, 2, 3, 4, 5]


def test_rover_mission_is_waypoints_on_the_ground() -> None:
    raw = px4.mission_items([Waypoint(60.17, 24.94, 30), Delay(4), Waypoint(60.171, 24.94, 30)], "rover")
    assert [r.command for r in raw] == [16, 93, 16]  # PX4 ignores a waypoint's hold time on a rover
    assert (raw[1].frame, raw[1].param1) == (px4.MAV_FRAME_MISSION, 4)
    assert all(r.z == 0 for r in raw)


def test_drone_delay_holds_at_the_takeoff_height() -> None:
    takeoff, delay = px4.mission_items([TakeOff(12), Delay(3)], "drone", takeoff_at=HOME)
    assert (delay.command, delay.param1, delay.x, delay.y, delay.z) == (16, 3, takeoff.x, takeoff.y, 12)


@pytest.mark.parametrize(
    ("items", "kind", "fragment"),
    [
        ([Waypoint(60.17, 24.94, 0), Land(60.17, 24.94)], "rover", "rover cannot Land"),
        ([TakeOff(10), Waypoint(60.17, 24.94, 0)], "rover", "rover cannot take off"),
        ([Waypoint(60.17, 24.94, 10), TakeOff(10)], "drone", "first item"),
        ([TakeOff(10), Land(60.17, 24.94), Waypoint(60.17, 24.94, 10)], "drone", "last item"),
        ([TakeOff(0)], "drone", "positive"),
        ([TakeOff(10), Waypoint(60.17, 24.94, 0)], "drone", "positive altitude"),
        ([], "drone", "empty"),
        ([Delay(5), Waypoint(60.17, 24.94, 10)], "drone", "must follow"),
    ],
)
def test_missions_px4_cannot_fly_are_refused(items: list[object], kind: str, fragment: str) -> None:
    with pytest.raises(MissionInvalid, match=fragment):
        px4.mission_items(items, kind, takeoff_at=HOME)  # type: ignore[arg-type]


def test_takeoff_needs_a_position() -> None:
    with pytest.raises(MissionInvalid, match="position"):
        px4.mission_items([TakeOff(10)], "drone", takeoff_at=None)


def test_fence_items_follow_px4_encoding() -> None:
    square = ((60.0, 24.0), (60.0, 24.1), (60.1, 24.1), (60.1, 24.0))
    raw = px4.fence_items([InclusionPolygon(square), ExclusionPolygon(square[:3]), ExclusionCircle(60.05, 24.05, 25)])
    assert [r.command for r in raw] == [5001] * 4 + [5002] * 3 + [5004]
    assert [r.param1 for r in raw] == [4] * 4 + [3] * 3 + [25]
    assert {r.mission_type for r in raw} == {px4.MAV_MISSION_TYPE_FENCE}
    assert {r.frame for r in raw} == {px4.MAV_FRAME_GLOBAL_INT}
    assert [r.seq for r in raw] == list(range(8))


def test_degenerate_fences_are_refused_before_upload() -> None:
    with pytest.raises(GeofenceUploadFailed, match="2 vertices"):
        px4.fence_items([InclusionPolygon(((60.0, 24.0), (60.1, 24.1)))])
    with pytest.raises(GeofenceUploadFailed, match="radius"):
        px4.fence_items([ExclusionCircle(60.0, 24.0, 0)])
